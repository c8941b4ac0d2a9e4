/**
 * Failure converter loaded by path (clients, workers and the workflow bundle all need the same one):
 * failure messages and stack traces are encoded as payloads, so the encryption codec seals them.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
