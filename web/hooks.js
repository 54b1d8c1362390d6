// The seams other client modules (web/moderation.js, web/admin.js) use to add to the circle
// page without editing app.js: an event bus for protocol messages, places for extra panels and
// controls, a way to decorate each person's row, and access to the connection.
// No DOM drawing of its own; app.js wires it up. See web/README.md.

const listeners = new Map();
const rowDecorators = [];
let bridge = null;

/**
 * Calls `fn(message)` for every message of `type` from the server ('*' for all of them), after
 * the page has handled it (joining.js). Also receives the page's own events (see web/README.md), such as
 * 'hearth:joined', 'hearth:connection' and 'hearth:left'. Returns a function that unsubscribes.
 */
export function on(type, fn) {
    if (!listeners.has(type)) listeners.set(type, new Set());
    listeners.get(type).add(fn);
    return () => listeners.get(type).delete(fn);
}

/** Used by the page's modules. A listener that throws is reported and does not stop the others. */
export function emit(type, message) {
    for (const key of [type, '*']) {
        const set = listeners.get(key);
        if (!set) continue;
        for (const fn of [...set]) {
            try {
                fn(message);
            } catch (error) {
                console.error('Hearth hook failed:', type, error);
            }
        }
    }
}

/**
 * Registers `fn(li, person, you)` to add to or adjust a person's row each time it is drawn
 * (for example a "hand raised" tag, or host buttons). Rows are redrawn on every change.
 */
export function decorateRow(fn) {
    rowDecorators.push(fn);
    if (bridge) bridge.redraw();
}

export function decorate(li, person, you) {
    for (const fn of rowDecorators) {
        try {
            fn(li, person, you);
        } catch (error) {
            console.error('Hearth row decorator failed:', error);
        }
    }
}

/** Puts `element` in the circle view above the list of people (queues, timers, lobby). */
export function addPanel(element) {
    document.getElementById('extra-panels').append(element);
}

/** Puts `element` (usually a button) among the person's own controls, before Leave. */
export function addControl(element) {
    const controls = document.getElementById('controls');
    controls.insertBefore(element, document.getElementById('leave'));
}

/** Sends a message to the server if connected; returns whether it went out. */
export function send(message) {
    return bridge ? bridge.send(message) : false;
}

/**
 * Reads a sentence to screen-reader users. `urgent` interrupts (use it for things the person
 * must act on: "you have the floor", "someone is waiting in the lobby").
 */
export function announce(text, { urgent = false } = {}) {
    if (bridge) bridge.announce(text, urgent);
}

/** Shows a short sentence in the circle view's notice line (and reads it out). */
export function notify(text) {
    if (bridge) bridge.notify(text);
}

/** The page's current view of things: {you, circle, participants, connection}. */
export function snapshot() {
    return bridge ? bridge.snapshot() : { you: null, circle: null, participants: [], connection: 'idle' };
}

/** Used once by app.js. */
export function connectBridge(impl) {
    bridge = impl;
}
