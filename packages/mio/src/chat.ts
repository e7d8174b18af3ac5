/**
 * MIO's Stage-IV chat format: Yi's ChatML with MIO's two system prompts (reference
 * `tokenization_mio.py` at 6c0b5e6: MIO_CHAT_TEMPLATE, MIO_STD_MODE_SYSTEM, MIO_VOICE_MODE_SYSTEM,
 * `apply_chat_template`). Only assistant responses carry loss (paper App. C).
 */
import { IGNORE_INDEX } from './pack.js';
import type { MioDocument, MultimodalTokenizer } from './vocab.js';

/** MIO_CHAT_TEMPLATE, verbatim. */
export const MIO_CHAT_TEMPLATE = {
  formatSystem: '<|im_start|>system\n{system}<|im_end|>',
  formatUser: '<|im_start|>user\n{query}<|im_end|>',
  formatAssistant: '<|im_start|>assistant\n{response}<|im_end|>',
  formatSeparator: '\n',
  stopWords: ['<|im_end|>'],
  assistantStarter: '<|im_start|>assistant\n',
  userStarter: '<|im_start|>user\n',
} as const;

/** The "voice" mode system prompt (TTS and speech generation), verbatim. */
export const MIO_VOICE_MODE_SYSTEM =
  'You are MIO, an AI assistant capable of understanding images, text, videos, and speech, and generating speech. Please respond to the user with speech only, starting with <spch> and ending with </spch>.';
/** The standard "std" mode system prompt, verbatim. */
export const MIO_STD_MODE_SYSTEM =
  'You are MIO, an AI assistant capable of understanding and generating images, text, videos, and speech, selecting the appropriate modality according to the context.';

export type ChatMode = 'std' | 'voice' | 'custom';
export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatTurn<C = string> {
  role: ChatRole;
  content: C;
}

export interface ChatOptions {
  /** std or voice system prompt, or custom: the first turn is the system turn. Default std. */
  mode?: ChatMode;
  /** End with `<|im_start|>assistant\n` (inference); otherwise drop the final separator. Default true. */
  addGenerationPrompt?: boolean;
  /** Prefix, e.g. Yi's BOS string `<|startoftext|>`; default none. */
  bos?: string;
}

function systemOf<C>(turns: readonly ChatTurn<C>[], mode: ChatMode): C | string {
  if (mode === 'std') return MIO_STD_MODE_SYSTEM;
  if (mode === 'voice') return MIO_VOICE_MODE_SYSTEM;
  if (mode === 'custom') {
    if (turns[0]?.role !== 'system') throw new Error(`MIO chat: in custom mode the first turn must be the system, got ${turns[0]?.role}`);
    return turns[0].content;
  }
  throw new Error(`MIO chat: unknown mode ${JSON.stringify(mode)}, expected std, voice or custom`);
}

/** The ChatML string of a conversation, as `apply_chat_template(tokenize=False)` builds it; system turns other than custom mode's are skipped. */
export function renderChat(turns: readonly ChatTurn[], opts: ChatOptions = {}): string {
  const t = MIO_CHAT_TEMPLATE;
  const mode = opts.mode ?? 'std';
  let s = t.formatSystem.replace('{system}', systemOf(turns, mode) as string) + t.formatSeparator;
  for (const turn of turns) {
    if (turn.role === 'user') s += t.formatUser.replace('{query}', turn.content) + t.formatSeparator;
    else if (turn.role === 'assistant') s += t.formatAssistant.replace('{response}', turn.content) + t.formatSeparator;
    else if (turn.role !== 'system')
      throw new Error(`MIO chat: unknown role ${JSON.stringify(turn.role)}, expected system, user or assistant`);
  }
  s = (opts.addGenerationPrompt ?? true) ? s + t.assistantStarter : s.slice(0, -t.formatSeparator.length);
  return (opts.bos ?? '') + s;
}

/** Ids and labels of one SFT conversation. */
export interface ChatExample {
  ids: number[];
  /** The id where it carries loss, IGNORE_INDEX elsewhere. */
  labels: number[];
}

/**
 * An SFT example: the ChatML pieces of `renderChat(..., { addGenerationPrompt: false })` tokenized
 * piece by piece (the text tokenizer must encode `<|im_start|>` / `<|im_end|>`), with loss on each
 * assistant response and the `<|im_end|>` that closes it (so the model learns to stop; the paper
 * says only "assistant responses", the closing marker is our reading). Turn contents are documents.
 */
export function chatExample(
  tok: MultimodalTokenizer,
  turns: readonly ChatTurn<MioDocument | string>[],
  opts: Omit<ChatOptions, 'addGenerationPrompt'> = {},
): ChatExample {
  const t = MIO_CHAT_TEMPLATE;
  const doc = (c: MioDocument | string): MioDocument => (typeof c === 'string' ? [{ type: 'text', text: c }] : c);
  const ids: number[] = [];
  const labels: number[] = [];
  const add = (d: MioDocument, loss: boolean) => {
    const x = tok.encode(d.filter((s) => s.type !== 'text' || s.text.length > 0));
    ids.push(...x);
    labels.push(...(loss ? x : x.map(() => IGNORE_INDEX)));
  };
  if (opts.bos) add(doc(opts.bos), false);
  add(doc(`<|im_start|>system\n`), false);
  add(doc(systemOf(turns, opts.mode ?? 'std')), false);
  add(doc(`<|im_end|>`), false);
  for (const turn of turns) {
    if (turn.role === 'system') continue;
    if (turn.role !== 'user' && turn.role !== 'assistant')
      throw new Error(`MIO chat: unknown role ${JSON.stringify(turn.role)}, expected system, user or assistant`);
    add(doc(t.formatSeparator), false);
    add(doc(turn.role === 'user' ? t.userStarter : t.assistantStarter), false);
    add(doc(turn.content), turn.role === 'assistant');
    add(doc('<|im_end|>'), turn.role === 'assistant');
  }
  return { ids, labels };
}
