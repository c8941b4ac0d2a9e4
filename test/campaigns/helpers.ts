/** Shared data of the campaign tests (fictional: 555-01xx numbers, made-up practice). */
import { REQUIRED_COLUMNS } from '../../src/campaigns/import';

/** The tests' clock: appointments in December 2026 are upcoming. */
export const NOW = new Date('2026-11-30T12:00:00Z');

export const PRACTICE = { practiceId: 'p1', practiceName: 'Bright Smiles Dental', practiceCallbackNumber: '+13125550100' } as const;

/** A valid row by column; `overrides` replace cells. */
export function row(n: number, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    appointment_id: `A${n}`,
    patient_id: `P${n}`,
    patient_name: `Pat ${n}`,
    phone: `+1212555${String(100 + (n % 100)).padStart(4, '0')}`,
    patient_time_zone: 'America/New_York',
    appointment_start: '2026-12-02T10:30:00-05:00',
    provider: 'Dr. Rivera',
    reason: 'cleaning',
    ...overrides,
  };
}

/** One CSV cell, quoted when it must be. */
export const cell = (v: string): string => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);

/** A CSV of `rows` with `columns` (default: the required ones), `eol` line endings. */
export function csvOf(rows: Record<string, string>[], columns: readonly string[] = REQUIRED_COLUMNS, eol = '\n'): string {
  return [columns.join(','), ...rows.map((r) => columns.map((c) => cell(r[c] ?? '')).join(','))].join(eol) + eol;
}
