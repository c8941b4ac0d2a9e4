/**
 * Reads Prometheus's text exposition format (what prom-client and the Temporal SDK's exporter
 * serve) into samples: `name{label="value",…} value [timestamp]`. Strict: a line that is not a
 * comment, blank or a sample fails the parse, so a malformed endpoint fails the test. (The npm
 * parser `parse-prometheus-text-format` was tried: it drops the labels and counts of histograms whose
 * `le` label comes first, as prom-client writes them.)
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)/y;

export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`line ${i + 1} is not a sample: ${line.slice(0, 200)}`);
    const labels: Record<string, string> = {};
    const body = m[2] ?? '';
    LABEL.lastIndex = 0;
    while (LABEL.lastIndex < body.length) {
      const l = LABEL.exec(body);
      if (!l) throw new Error(`line ${i + 1} has malformed labels: ${line.slice(0, 200)}`);
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    // Prometheus reads values as Go's ParseFloat does: NaN and Inf in any case (prom-client writes `Nan`).
    const v = m[3]!.toLowerCase();
    const value = v === 'nan' ? Number.NaN : /^[+-]?inf$/.test(v) ? (v.startsWith('-') ? -Infinity : Infinity) : Number(v);
    if (Number.isNaN(value) && v !== 'nan') throw new Error(`line ${i + 1} has a bad value: ${line.slice(0, 200)}`);
    samples.push({ name: m[1]!, labels, value });
  }
  return samples;
}
