// JSON messages as the body split makes them (protocol/json.ts), for tests that build appends by hand.
import { concatBytes } from "../../src/lib/bytes.ts";
import { eachMessage, type JsonMessages, MESSAGE_SEPARATOR } from "../../src/protocol/json.ts";

const SEPARATOR = new Uint8Array([MESSAGE_SEPARATOR]);

/** Stored messages (each already in compact form) as one JsonMessages. */
export function jsonMessages(messages: Uint8Array[]): JsonMessages {
  return { data: concatBytes(messages.flatMap((m, i) => (i > 0 ? [SEPARATOR, m] : [m]))), count: messages.length };
}

/** The messages of a JsonMessages as text, one string each. */
export function messageTexts(m: JsonMessages): string[] {
  const texts = [...eachMessage(m.data)].map((u) => new TextDecoder().decode(u));
  if (texts.length !== m.count) throw new Error(`count ${m.count} but ${texts.length} messages`);
  return texts;
}
