// The page's state (one object every module of the page reads and writes), the parts app.js
// creates at start, the server's close codes, and where the circle link comes from and what
// this tab remembers. Imports nothing: every other module of the page may import it.

const TOKEN_KEY = 'hearth.token';
export const NAME_KEY = 'hearth.name';
export const MIC_KEY = 'hearth.mic';
// WebSocket close codes after which the page must not knock again by itself
// (docs/protocol.md): removed, denied or banned; the seat taken by another tab; the end.
export const CLOSE_SENT_AWAY = 4403;
export const CLOSE_REPLACED = 4409;
export const CLOSE_ENDED = 4410;
export const FINAL_CLOSES = new Set([CLOSE_SENT_AWAY, CLOSE_REPLACED, CLOSE_ENDED]);
export const MODERATORS = new Set(['host', 'cohost']);

export const $ = (id) => document.getElementById(id);

// Made by app.js's start(). The host panel, hands, lobby view, final view and the join fields
// of issue 4 (moderation.js): the page calls it at the places marked "moderation". Issue 14:
// the door panel (connection_state.js) and the microphone and speaker in the circle
// (devices.js).
export const page = {
    moderation: null,
    door: null,
    devices: null,
    // A phone or tablet without a keyboard: no space-bar hints.
    touchOnly: false,
};

export const state = {
    token: null,
    name: '',
    // What the person asked for; the server's word (state.you.muted) is what is shown.
    wantMuted: true,
    phase: 'idle', // idle | joining | door (refused, may wait) | in | not-open | left | ended
    connection: 'idle', // idle | connecting | connected | reconnecting | left
    conn: null,
    peer: null,
    peerState: 'new',
    mic: null,
    track: null,
    micDeviceId: null,
    meter: null,
    // Why there is no microphone (null: not asked yet, or released while waiting).
    micReason: null,
    you: null,
    circle: null,
    retryTimer: null,
    reconnectAttempts: 0,
    // True while the circle is not open and the page keeps checking.
    waiting: false,
    rows: new Map(),
    speaking: new Set(),
    pushToTalk: false,
    wakeLock: null,
};

// Where the circle link comes from, and what this tab remembers

export function readToken() {
    const match = window.location.pathname.match(/^\/c\/([^/]+)\/?$/);
    if (match) {
        try {
            return decodeURIComponent(match[1]);
        } catch {
            return match[1];
        }
    }
    return sessionStorage.getItem(TOKEN_KEY);
}

// After a successful join the token moves out of the address bar (screenshots, screen sharing,
// history); the tab keeps it so a reload still finds the circle.
export function hideToken() {
    sessionStorage.setItem(TOKEN_KEY, state.token);
    if (window.location.pathname !== '/c/') {
        window.history.replaceState(null, '', '/c/');
    }
}
