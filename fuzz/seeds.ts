import { readdirSync, readFileSync } from 'node:fs';
import { readUdpDatagrams } from '../src/media/capture/pcapReader.js';

/** Seeds that come from the repository's own files rather than from builders. */

const FIXTURES = new URL('../tests/fixtures/', import.meta.url);
const DIALPLANS = new URL('../dialplans/', import.meta.url);

/** The recorded calls in tests/fixtures (libpcap, Ethernet/IPv4/UDP/RTP), by file name. */
export function fixtureCaptures(): { name: string; bytes: Uint8Array }[] {
  return readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.pcap'))
    .sort()
    .map((name) => ({ name, bytes: new Uint8Array(readFileSync(new URL(name, FIXTURES))) }));
}

/** Every UDP payload of the fixture captures: real RTP (PCMU, Opus, telephone-event) as it was sent. */
export function fixtureDatagrams(): Uint8Array[] {
  return fixtureCaptures().flatMap(({ bytes }) => readUdpDatagrams(bytes).datagrams.map((d) => d.payload.slice()));
}

/** The YAML files in dialplans/. */
export function dialplanFiles(): string[] {
  return readdirSync(DIALPLANS)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .sort()
    .map((f) => readFileSync(new URL(f, DIALPLANS), 'utf8'));
}

/** Every `step`-th item, so a seed set from thousands of recorded packets stays small and varied. */
export function everyNth<T>(items: readonly T[], step: number): T[] {
  return items.filter((_, i) => i % step === 0);
}

/** Real browsers' WebRTC offers kept in tests/fixtures (`scripts/capture-browser-offer.ts` captures Chromium's). */
export function browserOfferCaptures(): string[] {
  return readdirSync(FIXTURES)
    .filter((f) => f.endsWith('-offer.sdp'))
    .sort()
    .map((name) => readFileSync(new URL(name, FIXTURES), 'utf8'));
}
