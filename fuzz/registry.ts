import type { FuzzTarget } from './engine.js';
import { apiTarget } from './targets/api.js';
import { browserOfferTarget } from './targets/browserOffer.js';
import { dialplanTarget } from './targets/dialplan.js';
import { pcapTarget } from './targets/pcap.js';
import { rtcpTarget } from './targets/rtcp.js';
import { rtpTarget } from './targets/rtp.js';
import { sdpTarget } from './targets/sdp.js';
import { sipInviteTarget } from './targets/sipInvite.js';
import { DRACHTIO_BIN } from '../src/sip/testing/DrachtioProcess.js';
import { telephoneEventTarget } from './targets/telephoneEvent.js';
import { templateTarget } from './targets/template.js';
import { webrtcDoorTarget } from './targets/webrtcDoor.js';

/** Every target, in the order a run takes them (cheap parsers first, the API on Redis last). */
export const fuzzTargets: readonly FuzzTarget[] = [
  rtpTarget,
  rtcpTarget,
  telephoneEventTarget,
  sdpTarget,
  browserOfferTarget,
  pcapTarget,
  dialplanTarget,
  templateTarget,
  apiTarget,
  webrtcDoorTarget,
  // The live SIP door needs drachtio-server, built outside this repository: without it, no such target.
  ...(DRACHTIO_BIN ? [sipInviteTarget] : []),
];
