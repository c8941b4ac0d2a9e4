/** The published JSON Schema of the confirmation request is the one generated from the zod schema. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CONFIRMATION_REQUEST_SCHEMA_PATH, confirmationRequestJsonSchema } from '../../src/schema';

const root = fileURLToPath(new URL('../..', import.meta.url));

describe('schemas/confirmation-request.schema.json', () => {
  it('is committed and equals the schema generated from src/validation.ts (run `npm run schema` after changing it)', () => {
    const committed = readFileSync(`${root}${CONFIRMATION_REQUEST_SCHEMA_PATH}`, 'utf8');
    expect(committed).toBe(confirmationRequestJsonSchema());
  });

  it('states every field with its type and bound, and refuses unknown fields', () => {
    const schema = JSON.parse(confirmationRequestJsonSchema()) as {
      required: string[];
      additionalProperties: boolean;
      properties: Record<string, { type?: string; maxLength?: number; pattern?: string; additionalProperties?: boolean }>;
    };
    expect(schema.required.sort()).toEqual(
      ['appointmentId', 'appointmentStart', 'patientId', 'patientName', 'patientTimeZone', 'phone', 'practiceCallbackNumber', 'practiceId', 'practiceName', 'provider', 'reason'].sort(),
    );
    expect(schema.additionalProperties).toBe(false);
    expect(schema.properties.policy?.additionalProperties).toBe(false);
    for (const [name, property] of Object.entries(schema.properties)) {
      if (property.type === 'string') expect(property.maxLength, name).toBeGreaterThan(0);
    }
    expect(new RegExp(schema.properties.phone!.pattern!).test('+12125550123')).toBe(true);
    expect(new RegExp(schema.properties.appointmentStart!.pattern!).test('tomorrow')).toBe(false);
    expect(new RegExp(schema.properties.patientTimeZone!.pattern!).test('America/Chicago')).toBe(true);
  });
});
