// The one voice of the page for screen readers: everything read out goes through here, into the
// two live regions of index.html (#announcer polite, #announcer-urgent assertive).
//
// Why one module: live regions that redraw read themselves out again (a reconnecting banner
// re-read on every retry, "Needs support: Sam" on every redraw of the host panel, a share timer
// read every second). Here a sentence is said once, when it is news:
//   - `key` names what the sentence is about ('connection', 'support:<id>', 'turn:<id>:start');
//     the same sentence under the same key is not said again until the key is forgotten or
//     says something else.
//   - with `once`, a key is said at most once, whatever its words become (a share's start is
//     news once, even if the speaker's name changes or they leave meanwhile).
//   - sentences that come within one tick are read together, not the last one alone.

const said = new Map();
const pending = { polite: [], urgent: [] };
const timers = { polite: null, urgent: null };
// A short pause between clearing a region and filling it: screen readers then read a repeated
// sentence again (where the caller wants that), and several sentences arrive as one.
const SETTLE_MS = 50;

function region(kind) {
    return document.getElementById(kind === 'urgent' ? 'announcer-urgent' : 'announcer');
}

/**
 * Reads `text` out. `urgent` interrupts (use it for what the person must act on). With a `key`,
 * the sentence is said only if it differs from the last one said under that key. Returns whether
 * it will be said.
 */
export function say(text, { urgent = false, key = null, once = false } = {}) {
    if (!text) return false;
    if (key !== null) {
        if (said.get(key) === text || (once && said.has(key))) return false;
        said.set(key, text);
    }
    const kind = urgent ? 'urgent' : 'polite';
    if (!pending[kind].includes(text)) pending[kind].push(text);
    if (timers[kind] === null) {
        const node = region(kind);
        if (node) node.textContent = '';
        timers[kind] = window.setTimeout(() => {
            timers[kind] = null;
            const target = region(kind);
            const sentences = pending[kind].splice(0);
            if (target) target.textContent = sentences.join(' ');
        }, SETTLE_MS);
    }
    return true;
}

/** Lets the sentence under `key` be said again (the thing it was about is over). */
export function forget(key) {
    said.delete(key);
}

/** Forgets every key starting with `prefix` (e.g. all of one share's moments). */
export function forgetAll(prefix = '') {
    for (const key of [...said.keys()]) {
        if (key.startsWith(prefix)) said.delete(key);
    }
}
