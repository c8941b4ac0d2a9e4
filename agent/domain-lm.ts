/**
 * The offline recogniser's language model: a bigram model of what patients answer to "can you make
 * your appointment?", written as an ARPA file for PocketSphinx. The generic US-English model
 * (27 MB, any topic) turns phone-quality answers into everyday nonsense ("cancel" → "can kill");
 * this one expects answers about an appointment, and keeps some weight on a few hundred everyday
 * words so that off-topic speech decodes as off-topic words (which the matcher ignores), not as an
 * answer. Built at start-up from the lists below, restricted to words the pronouncing dictionary
 * has; loads in milliseconds.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Sentence patterns: `a|b` alternatives inside `( )`, optional parts inside `[ ]`. */
const PATTERNS = [
  // yes
  '[(yes|yeah|yep|yup|sure|okay|ok|of course|absolutely|definitely|right|correct)] [(i|we)] [(will|can|should)] (be there|make it|come|attend)',
  '(yes|yeah|yep|yup|sure|okay|ok|of course|absolutely|definitely|correct|right) [please] [thank you|thanks]',
  '[(yes|yeah|okay|sure)] (that|it|the time|this time|that time) (works|is fine|is good|is great|sounds good|works for me|is perfect)',
  '[(yes|yeah)] (sounds good|see you then|see you there|i confirm|please confirm|confirm it|confirm that|i can come|i will come|i will be there|i will attend|count me in)',
  '[yes] i (will|would) like to confirm [(it|that|my appointment|the appointment)]',
  // cancel
  '[(please|i|we)] [(need|want|would like|have)] [to] cancel [(it|that|the|my|this)] [(appointment|visit|cleaning|one)] [please] [thank you]',
  '(can|could) you cancel [(it|that|my appointment|the appointment)] [for me] [please]',
  'go ahead and cancel [it]',
  'cancel [(it|that|the appointment|my appointment)] [please]',
  // reschedule
  '[(i|we)] [(need|want|would like|have)] [to] reschedule [(it|that|the appointment|my appointment)] [(please|for next week|to another day)]',
  '(can|could) (we|you|i) (move|change|switch|push) (it|that|the appointment|the time|my appointment) [to] [(another|a different|a later) (day|time|date)] [(to|on|for)] [(monday|tuesday|wednesday|thursday|friday|saturday|next week|the afternoon|the morning)]',
  '[(i|we)] [(need|want|would like)] (another|a different|a later|some other) (day|time|date) [please]',
  '[(i|we)] [(need|want|would like)] [to] (move|change) (it|my appointment|the appointment|the time)',
  '(can|could) we do (monday|tuesday|wednesday|thursday|friday|saturday|next week|the afternoon|the morning) instead',
  'how about (monday|tuesday|wednesday|thursday|friday|saturday|next week) [(morning|afternoon|evening)]',
  '[(another|a different)] (monday|tuesday|wednesday|thursday|friday|saturday) [(morning|afternoon|evening)] (would be|is) better',
  'another time would be better',
  // opt out
  '[please] (stop|quit) (calling|calling me|these calls|calling this number|calling here) [please] [thank you]',
  '[please] (do not|don\'t|never) call [(me|here|this number)] [again] [please]',
  '[please] (take|remove|put) me (off|from) (your|the) (list|calls|calling list)',
  '(no more|stop) (calls|calling) [please]',
  'i want you to stop calling [me]',
  // wrong number
  '[(sorry|i think)] (you have|you\'ve got|you got|this is|you must have) the wrong (number|person)',
  '[sorry] wrong (number|person) [sorry]',
  '(there is|there\'s) (no one|nobody) (here|) (by that name|named that|with that name)',
  '(nobody|no one) here by that name',
  '(that person|he|she|they) (doesn\'t|does not|don\'t) live here',
  'i (don\'t|do not) know (who that is|that person|them|him|her)',
  // staff
  '(can|could|may) i (talk|speak) (to|with) (someone|somebody|a person|a human|a real person|the receptionist|the front desk|the staff|the office|a representative)',
  '[i] [(want|need|would like)] [to] (talk|speak) (to|with) (someone|somebody|a person|a human|a real person|the receptionist|the front desk|the staff|a representative)',
  '(put|connect|transfer) me (to|through to) (the front desk|the receptionist|someone|a person|a representative|the office)',
  '(operator|representative|receptionist|front desk) [please]',
  // neither
  '(hello|hi|what|who is this|who is calling|who\'s this|who\'s calling|sorry|pardon|excuse me|hold on|one second|wait|hmm|um|uh|i don\'t know|i\'m not sure|maybe|let me think|let me check) [please]',
  '(i can\'t|i cannot|i won\'t|i will not) (make it|come|be there)',
  'no [thank you|thanks]',
  'what is this about',
  'say that again [please]',
];

/** Everyday words kept in the model so off-topic speech decodes as itself. */
const EVERYDAY = `a about after again all also am an and any are around as ask at away back bad be because been before being best better big bill bit both busy but buy by call came can car check children coffee cold come could day dear did do does dog done door down drive driving each eat else even ever every family far feel few find fine first food for friend from get give go going good got great had happen has have he hear her here him his home hot house how husband i if in into is it job just keep kid kind know last late leave left let life like listen little live long look lot love made make man many may me mean minute mom money more morning most mother much must my name need never new next nice night no not nothing now of off oh old on once one only or other our out over own paper people phone pick place play please put quite rain read ready really right said same saw say school see she should show sick since sleep so some something soon sorry start still store sure take talk tell than thank that the their them then there these they thing think this those though thought three through time to today together told tomorrow too took town tried try two under until up us use very wait walk want was watch water way we weather week well went were what when where which while who why wife will with woman work would year yes yet you young your`.split(' ');

/** A pattern of one sentence counts as that sentence said this many times. */
const PATTERN_WEIGHT = 5;

/**
 * Each everyday word counts as if said this often on its own: about 1% of the model's weight in
 * all, enough for off-topic speech to decode as itself.
 */
const EVERYDAY_COUNT = 1;

/** Expands one pattern into every sentence it allows (the lists above stay small). */
export function expand(pattern: string): string[] {
  const m = /[[(]/.exec(pattern);
  if (!m) return [pattern.replace(/\s+/g, ' ').trim()];
  const open = m.index;
  const close = matchingClose(pattern, open);
  const inner = pattern.slice(open + 1, close);
  const options = splitTop(inner);
  if (pattern[open] === '[') options.push('');
  return options.flatMap((o) => expand(pattern.slice(0, open) + ' ' + o + ' ' + pattern.slice(close + 1)));
}

function matchingClose(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i += 1) {
    if (s[i] === '(' || s[i] === '[') depth += 1;
    if (s[i] === ')' || s[i] === ']') depth -= 1;
    if (depth === 0) return i;
  }
  throw new Error(`unbalanced pattern: ${s}`);
}

function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i += 1) {
    if (s[i] === '(' || s[i] === '[') depth += 1;
    if (s[i] === ')' || s[i] === ']') depth -= 1;
    if (s[i] === '|' && depth === 0) {
      out.push(s.slice(start, i));
      start = i + 1;
    }
  }
  out.push(s.slice(start));
  return out;
}

/**
 * The corpus: every sentence the patterns allow, with a weight (a fractional count). A pattern's
 * weight grows with the square root of the sentences it expands to, not in proportion: counted one
 * per sentence, the one pattern that lists days and times (95,000 of 103,000 sentences) made
 * "tuesday" likelier than "yes", and the recogniser heard days of the week in plain yeses and
 * "for the" in every "can we". (Measured on the speech benchmark: square root 162/174 correct,
 * equal weight per pattern 160–161, one per sentence 154.)
 */
export function corpus(): Map<string, number> {
  const out = new Map<string, number>();
  for (const pattern of PATTERNS) {
    const sentences = [...new Set(expand(pattern).filter((s) => s.length > 0))];
    const weight = (PATTERN_WEIGHT * Math.sqrt(sentences.length)) / sentences.length;
    for (const s of sentences) out.set(s, (out.get(s) ?? 0) + weight);
  }
  return out;
}

/**
 * An ARPA bigram model of the weighted corpus (Witten–Bell discounting over fractional counts,
 * back-off to unigrams), with the everyday words as unigrams of low weight. Only words in
 * `vocabulary` (the dictionary's) are kept.
 */
export function arpa(sentences: Map<string, number>, vocabulary: Set<string>): string {
  const uni = new Map<string, number>();
  const bi = new Map<string, Map<string, number>>();
  const add = (m: Map<string, number>, k: string, n = 1) => m.set(k, (m.get(k) ?? 0) + n);
  for (const [s, weight] of sentences) {
    const words = s.split(' ');
    if (words.some((w) => !vocabulary.has(w))) continue;
    const seq = ['<s>', ...words, '</s>'];
    for (const [i, w] of seq.entries()) {
      add(uni, w, weight);
      if (i > 0) add(bi.get(seq[i - 1]!) ?? bi.set(seq[i - 1]!, new Map()).get(seq[i - 1]!)!, w, weight);
    }
  }
  // Everyday words: as if each had been said on its own (they then follow anything via back-off).
  for (const w of EVERYDAY) if (vocabulary.has(w)) add(uni, w, EVERYDAY_COUNT);
  const total = [...uni.entries()].filter(([w]) => w !== '<s>').reduce((n, [, c]) => n + c, 0);
  const p1 = new Map([...uni.entries()].map(([w, c]) => [w, w === '<s>' ? 0 : c / total]));
  const log = (p: number) => (p > 0 ? Math.log10(p).toFixed(4) : '-99.0000');
  const lines1: string[] = [];
  const lines2: string[] = [];
  for (const [w] of uni) {
    const followers = bi.get(w);
    let backoff = '';
    if (followers) {
      const c = [...followers.values()].reduce((a, b) => a + b, 0);
      const t = followers.size;
      let seenMass = 0;
      for (const [v, n] of followers) {
        lines2.push(`${log(n / (c + t))} ${w} ${v}`);
        seenMass += p1.get(v) ?? 0;
      }
      backoff = ` ${log(t / (c + t) / Math.max(1e-9, 1 - seenMass))}`;
    }
    lines1.push(`${log(p1.get(w)!)} ${w}${backoff}`);
  }
  return ['\\data\\', `ngram 1=${lines1.length}`, `ngram 2=${lines2.length}`, '', '\\1-grams:', ...lines1, '', '\\2-grams:', ...lines2, '', '\\end\\', ''].join('\n');
}

/**
 * Writes the model, and the dictionary cut down to its words (the full one takes PocketSphinx
 * longer to load than the decoding itself), once per content into the temp directory.
 */
export function domainLanguageModel(dictFile: string): { lm: string; dict: string } {
  // Once per process: a job process builds it while warm (agent/entry.ts), not on the patient's
  // first answer (half a second of CPU, more on a busy host).
  let files = built.get(dictFile);
  if (!files) built.set(dictFile, (files = buildLanguageModel(dictFile)));
  return files;
}

const built = new Map<string, { lm: string; dict: string }>();

function buildLanguageModel(dictFile: string): { lm: string; dict: string } {
  const dictLines = readFileSync(dictFile, 'utf8').split('\n');
  const vocabulary = new Set(dictLines.map((l) => l.slice(0, l.indexOf(' ')).replace(/\(\d+\)$/, '')).filter(Boolean));
  const lm = arpa(corpus(), vocabulary);
  const used = new Set(lm.split('\n').flatMap((l) => l.split(' ').slice(1, 3)));
  const dict = dictLines.filter((l) => used.has(l.slice(0, l.indexOf(' ')).replace(/\(\d+\)$/, ''))).join('\n') + '\n';
  const stem = join(tmpdir(), `call-campaigns-answers-${createHash('sha256').update(lm).update(dict).digest('hex').slice(0, 12)}`);
  for (const [file, text] of [[`${stem}.lm`, lm], [`${stem}.dict`, dict]] as const) {
    if (existsSync(file)) continue;
    const part = `${file}.${process.pid}.part`;
    writeFileSync(part, text);
    renameSync(part, file); // whole or not at all, for concurrent job processes
  }
  return { lm: `${stem}.lm`, dict: `${stem}.dict` };
}
