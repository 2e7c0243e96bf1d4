"""reclake's own view inside the Airflow UI: pages built from the library's figures (views),
rendered as plain HTML with inline SVG charts (pages, html, svg). The Airflow plugin in
plugins/reclake_view.py only routes requests and checks Airflow's authentication."""
