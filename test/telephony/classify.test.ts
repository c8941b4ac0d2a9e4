/**
 * SIP failure → DialFailureType, one row per response observed with the real livekit-sip
 * (../shared/REFERENCE.md), built as livekit-server-sdk's own error class carries them.
 */
import { ServerError } from 'livekit-server-sdk';
import { describe, expect, it } from 'vitest';
import { DialFailureType } from '../../src/contracts';
import { classifyDialError } from '../../src/telephony/livekit';

const sipError = (status: number, code: string, message: string, sipCode?: string, sipStatus?: string) =>
  new ServerError('twirp', message, status, code, sipCode ? { sip_status_code: sipCode, sip_status: sipStatus ?? '', error_details: 'CAE' } : undefined);

describe('classifyDialError (observed livekit-sip responses)', () => {
  it.each([
    ['486 Busy Here', sipError(429, 'resource_exhausted', 'SIP call failed: 486 Busy Here (resource_exhausted)', '486', 'Busy Here'), DialFailureType.BUSY, 486],
    ['480 Temporarily Unavailable', sipError(429, 'resource_exhausted', 'SIP call failed: 480 Temporarily Unavailable (resource_exhausted)', '480', 'Temporarily Unavailable'), DialFailureType.NO_ANSWER, 480],
    ['603 Decline', sipError(403, 'permission_denied', 'SIP call failed: 603 Decline (permission_denied)', '603', 'Decline'), DialFailureType.DECLINED, 603],
    ['404 Not Found', sipError(404, 'not_found', 'SIP call failed: 404 Not Found (not_found)', '404', 'Not Found'), DialFailureType.INVALID_NUMBER, 404],
    ['503 Service Unavailable', sipError(412, 'failed_precondition', 'SIP call failed: 503 Service Unavailable (failed_precondition)', '503', 'Service Unavailable'), DialFailureType.TRUNK_ERROR, 503],
    ['ringing timeout (no SIP status)', sipError(408, 'canceled', 'twirp error unknown: sip request timed out'), DialFailureType.NO_ANSWER, 408],
    ['rare 412 context deadline exceeded', sipError(412, 'failed_precondition', 'context deadline exceeded'), DialFailureType.NO_ANSWER, 408],
    ['484 Address Incomplete', sipError(404, 'not_found', 'SIP call failed: 484 Address Incomplete', '484', 'Address Incomplete'), DialFailureType.INVALID_NUMBER, 484],
    ['410 Gone', sipError(404, 'not_found', 'SIP call failed: 410 Gone', '410', 'Gone'), DialFailureType.INVALID_NUMBER, 410],
    ['604 Does Not Exist Anywhere', sipError(404, 'not_found', 'SIP call failed: 604 Does Not Exist Anywhere', '604', 'Does Not Exist Anywhere'), DialFailureType.INVALID_NUMBER, 604],
    ['500 from the carrier', sipError(412, 'failed_precondition', 'SIP call failed: 500 Server Internal Error', '500', 'Server Internal Error'), DialFailureType.TRUNK_ERROR, 500],
  ])('%s', (_name, err, type, sipStatusCode) => {
    const classified = classifyDialError(err);
    expect(classified.type).toBe(type);
    expect(classified.sipStatusCode).toBe(sipStatusCode);
  });

  it('keeps the SIP reason phrase', () => {
    expect(classifyDialError(sipError(429, 'resource_exhausted', 'x', '486', 'Busy Here')).sipStatus).toBe('Busy Here');
  });

  it('a request that got no answer (timeout, reset) is UNKNOWN: the workflow looks at the room, never redials', () => {
    const timeout = Object.assign(new Error('The operation was aborted due to timeout'), { name: 'TimeoutError' });
    expect(classifyDialError(timeout).type).toBe(DialFailureType.UNKNOWN);
    expect(classifyDialError(new TypeError('fetch failed')).type).toBe(DialFailureType.UNKNOWN);
    expect(classifyDialError(sipError(502, 'unavailable', 'bad gateway')).type).toBe(DialFailureType.UNKNOWN);
  });

  it('other server errors (bad trunk id, auth) are TRUNK_ERROR', () => {
    expect(classifyDialError(sipError(401, 'unauthenticated', 'invalid token')).type).toBe(DialFailureType.TRUNK_ERROR);
    expect(classifyDialError(sipError(400, 'invalid_argument', 'trunk not found')).type).toBe(DialFailureType.TRUNK_ERROR);
  });
});
