// Honest states at the door and on the wire (issue 14): what each refusal of `join` means for
// the person, a backoff for waiting, and whether the device is online. No DOM drawing here
// beyond the door panel, whose words are the server's own.

// Refusals after which waiting helps: the page offers to keep trying by itself (with backoff)
// or to try again now. The microphone is released meanwhile (docs/protocol.md, "Errors").
export const DOOR_WAIT = new Set([
    'circle_full', 'server_busy', 'server_draining', 'storage_unavailable', 'lobby_full',
    'rate_limited', 'too_many_connections',
]);

// The server's own passing troubles (an overload, a restart, its database away): the page
// waits and knocks again by itself at once, sooner, as after a lost connection.
export const AUTO_WAIT = new Set(['server_busy', 'server_draining', 'storage_unavailable']);

const FIRST_WAIT_MS = 5000;
const MAX_WAIT_MS = 60000;
const SERVER_FIRST_WAIT_MS = 1000;
const SERVER_MAX_WAIT_MS = 15000;

// What the page says when the server sent no words (an older server).
const FALLBACK = {
    circle_full: 'The circle is full right now.',
    server_busy: 'The server is very busy right now.',
    server_draining: 'The server is restarting for an update.',
    storage_unavailable: 'The server cannot let anyone new in for a moment.',
    lobby_full: 'Too many people are waiting to come in.',
    rate_limited: 'Too many attempts in a short time.',
    too_many_connections: 'Too many connections from your network.',
};

/** Delay before the n-th automatic try (0-based): 5 s doubling to a minute (1 s to 15 s for
 * the server's own troubles), with jitter so a crowd turned away at once does not come back
 * at once. */
export function backoffDelay(attempt, code = '', random = Math.random) {
    const server = AUTO_WAIT.has(code);
    const first = server ? SERVER_FIRST_WAIT_MS : FIRST_WAIT_MS;
    const base = Math.min(server ? SERVER_MAX_WAIT_MS : MAX_WAIT_MS, first * 2 ** attempt);
    return Math.round(base * (0.8 + 0.4 * random()));
}

/** Whether the browser believes it has a network (navigator.onLine: false is reliable). */
export function isOnline() {
    return navigator.onLine !== false;
}

/** Calls onOffline / onOnline at once when the device loses or regains its network. */
export function watchNetwork({ onOffline, onOnline }) {
    window.addEventListener('offline', () => onOffline());
    window.addEventListener('online', () => onOnline());
}

/**
 * The door panel on the join view: the server's reason, and the two ways on: wait (the page
 * keeps trying by itself, saying when) or try again now. `tryAgain()` is the page's join.
 */
export class DoorPanel {
    constructor(tryAgain) {
        this.tryAgain = tryAgain;
        this.attempt = 0;
        this.timer = null;
        this.tick = null;
        this.dueAt = 0;
        this.waiting = false;
        this.code = null;
        this._build();
    }

    _build() {
        const panel = document.createElement('div');
        panel.id = 'door';
        panel.className = 'door note';
        panel.setAttribute('data-testid', 'door');
        panel.hidden = true;
        const title = document.createElement('h2');
        title.id = 'door-title';
        title.tabIndex = -1;
        this.text = document.createElement('p');
        this.text.setAttribute('data-testid', 'door-text');
        this.text.setAttribute('role', 'alert');
        this.mic = document.createElement('p');
        this.mic.className = 'hint';
        this.mic.textContent = 'Your microphone is off while you wait.';
        this.countdown = document.createElement('p');
        this.countdown.setAttribute('data-testid', 'door-countdown');
        this.countdown.className = 'hint';
        const actions = document.createElement('div');
        actions.className = 'actions';
        this.waitButton = document.createElement('button');
        this.waitButton.type = 'button';
        this.waitButton.setAttribute('data-testid', 'door-wait');
        this.waitButton.textContent = 'Wait and keep trying';
        this.waitButton.addEventListener('click', () => this.startWaiting());
        this.nowButton = document.createElement('button');
        this.nowButton.type = 'button';
        this.nowButton.className = 'primary';
        this.nowButton.setAttribute('data-testid', 'door-try-now');
        this.nowButton.textContent = 'Try again now';
        this.nowButton.addEventListener('click', () => this._tryNow());
        actions.append(this.nowButton, this.waitButton);
        panel.append(title, this.text, this.mic, this.countdown, actions);
        this.title = title;
        this.panel = panel;
        // First thing under the join view's heading: the news comes before the form.
        document.getElementById('join-title').after(panel);
    }

    get shown() {
        return !this.panel.hidden;
    }

    /** A refusal at the door: say so at once, in the server's words. */
    show(code, message) {
        this.code = code;
        this.panel.hidden = false;
        this.title.textContent = code === 'circle_full' ? 'The circle is full' : 'You are not in yet';
        this.text.textContent = message || FALLBACK[code] || 'You cannot come in right now.';
        if (this.waiting) {
            this._schedule();
        } else if (AUTO_WAIT.has(code)) {
            this.attempt = 0;
            this.waiting = true;
            this.waitButton.hidden = true;
            this._schedule();
            this.title.focus();
        } else {
            this.countdown.textContent = 'You can wait here: this page will keep trying for you. '
                + 'Or try again yourself.';
            this.attempt = 0;
            this.title.focus();
        }
    }

    startWaiting() {
        this.waiting = true;
        this.waitButton.hidden = true;
        this._schedule();
        this.nowButton.focus();
    }

    _schedule() {
        this._clearTimers();
        const delay = backoffDelay(this.attempt, this.code);
        this.attempt += 1;
        this.dueAt = Date.now() + delay;
        this._renderCountdown();
        this.tick = window.setInterval(() => this._renderCountdown(), 1000);
        this.timer = window.setTimeout(() => {
            this._clearTimers();
            this.countdown.textContent = 'Trying again…';
            this.tryAgain();
        }, delay);
    }

    _renderCountdown() {
        const seconds = Math.max(1, Math.round((this.dueAt - Date.now()) / 1000));
        this.countdown.textContent = `Waiting. This page tries again in ${seconds} second`
            + `${seconds === 1 ? '' : 's'}, and lets you in as soon as there is room.`;
    }

    _tryNow() {
        this._clearTimers();
        this.countdown.textContent = 'Trying again…';
        this.tryAgain();
    }

    _clearTimers() {
        if (this.timer !== null) window.clearTimeout(this.timer);
        if (this.tick !== null) window.clearInterval(this.tick);
        this.timer = null;
        this.tick = null;
    }

    /** In, or back to the form: forget the door. */
    hide() {
        this._clearTimers();
        this.panel.hidden = true;
        this.waiting = false;
        this.waitButton.hidden = false;
        this.attempt = 0;
        this.code = null;
    }
}
