// What `pulsar-perf produce` does, with Pulsar's own Java client (pulsar-client-original, from the
// broker's jars that scripts/services fetches): pulsar-perf lives in org.apache.pulsar:pulsar-testclient,
// which the Maven repositories reachable here do not serve. The bench suite `pulsar` compiles and
// runs this file as the limit of the machine (bench/workloads/pulsar-perf.ts).
//
// One producer, async sends, pulsar-perf produce's defaults: batching on, batchingMaxPublishDelay
// 1 ms, batchingMaxMessages 1000, batchingMaxBytes 4 MiB, maxPendingMessages 1000 (send waits when
// full), maxPendingMessagesAcrossPartitions 50000, round-robin routing over the partitions, no
// compression, no key. Payloads: a random line of the payload file per message (pulsar-perf's
// --payload-file). Latency: send() call to its ack, per message.
//
//   java -cp <classes>:<pulsar lib>/* PulsarProducePerf <serviceUrl> <topic> <records> <payload file> <batching: on|off>
//
// Prints one summary line (parsed by the bench):
//   PulsarProducePerf: <n> records sent, <r> records/sec (<mb> MB/sec), latency ms avg <a> p50 <p> p95 <p> p99 <p> p99.9 <p> max <m>
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.pulsar.client.api.MessageRoutingMode;
import org.apache.pulsar.client.api.Producer;
import org.apache.pulsar.client.api.PulsarClient;

public final class PulsarProducePerf {
  public static void main(String[] args) throws Exception {
    if (args.length != 5) {
      System.err.println("usage: PulsarProducePerf <serviceUrl> <topic> <records> <payload file> <on|off>");
      System.exit(2);
    }
    String serviceUrl = args[0];
    String topic = args[1];
    int records = Integer.parseInt(args[2]);
    List<String> lines = Files.readAllLines(Paths.get(args[3]), StandardCharsets.UTF_8);
    byte[][] payloads = lines.stream().filter(l -> !l.isEmpty()).map(l -> l.getBytes(StandardCharsets.UTF_8)).toArray(byte[][]::new);
    boolean batching = args[4].equals("on");

    long[] latencyNanos = new long[records];
    AtomicLong bytes = new AtomicLong();
    AtomicReference<Throwable> failure = new AtomicReference<>();
    Random random = new Random(1);
    try (PulsarClient client = PulsarClient.builder().serviceUrl(serviceUrl).build()) {
      try (Producer<byte[]> producer =
          client
              .newProducer()
              .topic(topic)
              .enableBatching(batching)
              .batchingMaxPublishDelay(1, TimeUnit.MILLISECONDS)
              .batchingMaxMessages(1000)
              .batchingMaxBytes(4 * 1024 * 1024)
              .maxPendingMessages(1000)
              .maxPendingMessagesAcrossPartitions(50000)
              .blockIfQueueFull(true)
              .messageRoutingMode(MessageRoutingMode.RoundRobinPartition)
              .sendTimeout(0, TimeUnit.SECONDS)
              .create()) {
        CompletableFuture<?>[] sends = new CompletableFuture<?>[records];
        long start = System.nanoTime();
        for (int i = 0; i < records; i++) {
          byte[] payload = payloads[random.nextInt(payloads.length)];
          int at = i;
          long sent = System.nanoTime();
          sends[i] =
              producer
                  .sendAsync(payload)
                  .whenComplete(
                      (id, error) -> {
                        latencyNanos[at] = System.nanoTime() - sent;
                        if (error != null) failure.compareAndSet(null, error);
                        else bytes.addAndGet(payload.length);
                      });
        }
        CompletableFuture.allOf(sends).join();
        long elapsed = System.nanoTime() - start;
        if (failure.get() != null) throw new RuntimeException("a send failed", failure.get());
        long[] sorted = latencyNanos.clone();
        Arrays.sort(sorted);
        double seconds = elapsed / 1e9;
        double avg = Arrays.stream(sorted).average().orElse(0) / 1e6;
        System.out.printf(
            "PulsarProducePerf: %d records sent, %.1f records/sec (%.2f MB/sec), latency ms avg %.2f p50 %.2f p95 %.2f p99 %.2f p99.9 %.2f max %.2f%n",
            records,
            records / seconds,
            bytes.get() / seconds / (1024 * 1024),
            avg,
            pct(sorted, 50),
            pct(sorted, 95),
            pct(sorted, 99),
            pct(sorted, 99.9),
            sorted[sorted.length - 1] / 1e6);
      }
    }
  }

  private static double pct(long[] sorted, double p) {
    int i = (int) Math.min(sorted.length - 1, Math.ceil(p / 100 * sorted.length) - 1);
    return sorted[Math.max(0, i)] / 1e6;
  }
}
