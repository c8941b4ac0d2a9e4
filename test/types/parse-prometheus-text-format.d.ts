/** The package ships no types: what the metrics test uses of it (prom2json's shape). */
declare module 'parse-prometheus-text-format' {
  /** Parses Prometheus text exposition into metric families. */
  export default function parsePrometheusTextFormat(text: string): unknown[];
}
