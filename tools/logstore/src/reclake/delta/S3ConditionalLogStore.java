package reclake.delta;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Iterator;

import io.delta.storage.HadoopFileSystemLogStore;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FSDataOutputStreamBuilder;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * A Delta log store for S3 (s3a://) whose commits are safe with any number of writers in any
 * number of processes, with no lock service: the commit file N.json is created with an S3
 * conditional write (PUT with If-None-Match: *, through S3A's createFile option
 * fs.option.create.conditional.overwrite, Hadoop 3.4.2+), so the store itself lets exactly one
 * writer create each version. A writer that loses gets java.nio.file.FileAlreadyExistsException,
 * which Delta handles as a concurrent commit: it checks for logical conflicts and retries at the
 * next version, or fails the transaction. delta-rs 1.x commits to S3 with the same conditional
 * PUT, so Spark and delta-rs writers are safe together on one table.
 *
 * Delta's own S3SingleDriverLogStore checks for N.json and then writes it: mutual exclusion only
 * inside one JVM, and two drivers can silently overwrite each other's commit.
 */
public class S3ConditionalLogStore extends HadoopFileSystemLogStore {
    /** S3A's builder option for If-None-Match: * (HADOOP-19256). */
    static final String CONDITIONAL_OVERWRITE = "fs.option.create.conditional.overwrite";

    public S3ConditionalLogStore(Configuration initHadoopConf) {
        super(initHadoopConf);
    }

    @Override
    public void write(Path path, Iterator<String> actions, Boolean overwrite,
                      Configuration hadoopConf) throws IOException {
        FileSystem fs = path.getFileSystem(hadoopConf);
        if (overwrite) {
            // Only _last_checkpoint is written this way: a hint, last writer wins by design.
            try (FSDataOutputStream out = fs.create(path, true)) {
                writeLines(out, actions);
            }
            return;
        }
        if (fs.exists(path)) {
            throw new java.nio.file.FileAlreadyExistsException(path.toString());
        }
        FSDataOutputStreamBuilder<?, ?> builder = fs.createFile(path);
        builder.overwrite(true);
        builder.must(CONDITIONAL_OVERWRITE, true);
        FSDataOutputStream out = builder.build();
        try {
            writeLines(out, actions);
        } catch (IOException e) {
            out.close();
            throw e;
        }
        try {
            // The PUT (and its precondition) happens when the stream closes.
            out.close();
        } catch (InterruptedIOException e) {
            throw e;
        } catch (IOException e) {
            if (lostTheRace(e)) {
                throw new java.nio.file.FileAlreadyExistsException(path.toString());
            }
            throw e;
        }
    }

    private static void writeLines(FSDataOutputStream out, Iterator<String> actions)
            throws IOException {
        while (actions.hasNext()) {
            out.write((actions.next() + "\n").getBytes(StandardCharsets.UTF_8));
        }
    }

    /** True when the PUT failed its If-None-Match precondition (HTTP 412): another writer won. */
    static boolean lostTheRace(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof org.apache.hadoop.fs.FileAlreadyExistsException
                || t instanceof java.nio.file.FileAlreadyExistsException) {
                return true;
            }
            String message = String.valueOf(t.getMessage());
            if (message.contains("412") || message.contains("PreconditionFailed")
                || message.contains("Precondition Failed")) {
                return true;
            }
        }
        return false;
    }

    @Override
    public Boolean isPartialWriteVisible(Path path, Configuration hadoopConf) {
        // A PUT is atomic: readers see the whole commit file or none of it.
        return false;
    }
}
