// Care that must be honest (issue 14): the "I need support" signal, shown as sent only once the
// server confirmed it (`support_updated`; restored from `joined.needs_support` after a reload or
// a reconnect), and the crisis-resources panel, which opens in view, takes focus and stays
// reachable after a removal or the end of the circle. The texts come from the server
// (room.crisis_text: the series' own, or the deployment's HEARTH_CRISIS_TEXT).

import * as hooks from './hooks.js';
import { el } from './dom.js';

const MODERATOR_ROLES = new Set(['host', 'cohost']);
// Until the circle's own text arrives (before joining, or from an older server).
const FALLBACK_CRISIS = 'If you are in danger or thinking of harming yourself, please call your '
    + 'local emergency number now (112 in Europe, 911 in North America, 999 in the UK).';
// A request the server has not confirmed in this time is said to be not sent.
const CONFIRM_MS = 8000;


export class Care {
    constructor() {
        // The server's word on the signal, and what was asked and not yet confirmed.
        this.confirmed = false;
        this.pending = null;
        this.pendingTimer = null;
        this.connected = false;
        this.you = null;
        this.crisisOpener = null;
        this._buildSupport();
        this._buildCrisis();
        hooks.on('joined', (m) => this._joined(m));
        hooks.on('room_updated', (m) => this._room(m.room));
        hooks.on('waiting', (m) => {
            this._room(m.room);
            // Waiting to be let in: the crisis resources are one press away there too.
            const lobby = document.getElementById('view-lobby');
            if (lobby && !lobby.querySelector('[aria-controls="crisis-panel"]')) {
                lobby.append(el('div', { className: 'actions' }, this._opener('crisis-lobby', 'quiet')));
            }
        });
        hooks.on('support_updated', (m) => this._confirmed(Boolean(m.active)));
        hooks.on('participant_updated', (m) => {
            if (this.you && m.participant && m.participant.id === this.you.id) {
                this.you = m.participant;
                this._renderSupport();
            }
        });
        hooks.on('error', (m) => this._error(m));
        hooks.on('hearth:connection', (m) => this._connection(m.state));
        hooks.on('hearth:left', () => this._ended());
    }

    // --- the support signal ------------------------------------------------------------

    _buildSupport() {
        this.supportButton = el('button', {
            type: 'button', testid: 'need-support', onclick: () => this._toggle(),
        }, 'I need support');
        this.supportButton.setAttribute('aria-pressed', 'false');
        this.supportButton.setAttribute('aria-describedby', 'support-hint support-status');
        this.supportHint = el('p', { id: 'support-hint', className: 'hint support-hint', testid: 'support-hint' },
            'Only the hosts see this.');
        this.supportStatus = el('p', { id: 'support-status', className: 'hint', testid: 'support-status', role: 'status' });
        this.supportBox = el('div', { className: 'support', testid: 'support' },
            this.supportButton, this.supportHint, this.supportStatus);
        this.supportBox.hidden = true;
        // Just below the sticky control bar, not in it: on a phone the bar must stay small.
        document.getElementById('controls').after(this.supportBox);
    }

    _toggle() {
        if (this.pending !== null) return;
        const want = !this.confirmed;
        const sent = this.connected && hooks.send({ type: 'need_support', active: want });
        if (!sent) {
            this.supportStatus.textContent = 'Not sent: you are not connected. '
                + 'Press again once the connection is back.';
            return;
        }
        this.pending = want;
        window.clearTimeout(this.pendingTimer);
        this.pendingTimer = window.setTimeout(() => {
            if (this.pending === null) return;
            this.pending = null;
            this._renderSupport();
            this.supportStatus.textContent = 'The hosts could not be reached. Please try again.';
        }, CONFIRM_MS);
        this._renderSupport();
    }

    _confirmed(active) {
        window.clearTimeout(this.pendingTimer);
        const asked = this.pending;
        this.pending = null;
        this.confirmed = active;
        this._renderSupport();
        if (asked !== null) {
            const text = active
                ? 'Sent. The hosts see that you need support.'
                : 'Cancelled. The hosts no longer see a request from you.';
            this.supportStatus.textContent = text;
            hooks.announce(text);
        }
    }

    _error(message) {
        if (message.ref !== 'need_support' || this.pending === null) return;
        if (message.code === 'no_change') {
            // The server already holds what was asked: that is a confirmation.
            this._confirmed(this.pending);
            return;
        }
        window.clearTimeout(this.pendingTimer);
        this.pending = null;
        this._renderSupport();
        this.supportStatus.textContent = message.message || 'That did not reach the hosts.';
    }

    _renderSupport() {
        const moderator = this.you && MODERATOR_ROLES.has(this.you.role);
        this.supportBox.hidden = !this.you || moderator;
        const button = this.supportButton;
        button.setAttribute('aria-pressed', String(this.confirmed));
        button.toggleAttribute('aria-busy', this.pending !== null);
        button.dataset.state = this.pending !== null ? 'sending' : String(this.confirmed);
        if (this.pending === true) {
            button.textContent = 'Sending to the hosts…';
        } else if (this.pending === false) {
            button.textContent = 'Cancelling…';
        } else {
            button.textContent = this.confirmed ? 'Support requested (press to cancel)' : 'I need support';
        }
    }

    _joined(message) {
        this.you = message.you;
        this.connected = true;
        window.clearTimeout(this.pendingTimer);
        this.pending = null;
        // The server's word after a reload or a reconnect.
        this.confirmed = Boolean(message.needs_support);
        this.supportStatus.textContent = this.confirmed ? 'The hosts see that you need support.' : '';
        this._renderSupport();
        this._room(message.room);
        this.crisisAfter.hidden = true;
    }

    _connection(state) {
        this.connected = state === 'connected';
        if (!this.connected && this.pending !== null) {
            window.clearTimeout(this.pendingTimer);
            this.pending = null;
            this.supportStatus.textContent = 'Not sent: the connection was lost.';
            this._renderSupport();
        }
    }

    // --- the crisis panel --------------------------------------------------------------

    _buildCrisis() {
        this.crisisText = el('p', { testid: 'crisis-text' }, FALLBACK_CRISIS);
        this.crisisHeading = el('h2', { id: 'crisis-title', tabIndex: -1 }, 'If you need help now');
        this.crisis = el('section', {
            id: 'crisis-panel', className: 'note crisis', testid: 'crisis-panel', hidden: true,
        }, this.crisisHeading, this.crisisText,
        el('button', { type: 'button', className: 'small', testid: 'close-crisis', onclick: () => this.closeCrisis() }, 'Close'));
        this.crisis.setAttribute('aria-labelledby', 'crisis-title');
        // At the top of the page, above every view: it opens where the person looks, and a
        // removal or the end of the circle does not take it away.
        const main = document.getElementById('main');
        main.insertBefore(this.crisis, main.firstChild);

        // At the head of the circle view, where it is found without scrolling.
        this.crisisButton = this._opener('crisis', 'quiet small');
        document.getElementById('connection-state').after(this.crisisButton);
        // After a removal or the end: the same panel, from the page that remains.
        this.crisisAfter = el('div', { className: 'actions', testid: 'crisis-after' },
            this._opener('crisis-final', ''));
        this.crisisAfter.hidden = true;
    }

    _opener(testid, className) {
        const button = el('button', {
            type: 'button', className, testid, onclick: (event) => this.toggleCrisis(event.currentTarget),
        }, 'Crisis resources');
        button.setAttribute('aria-expanded', 'false');
        button.setAttribute('aria-controls', 'crisis-panel');
        return button;
    }

    _openers() {
        return document.querySelectorAll('[aria-controls="crisis-panel"]');
    }

    toggleCrisis(opener) {
        if (this.crisis.hidden) this.openCrisis(opener);
        else this.closeCrisis();
    }

    openCrisis(opener) {
        this.crisisOpener = opener || null;
        this.crisis.hidden = false;
        for (const button of this._openers()) button.setAttribute('aria-expanded', 'true');
        this.crisis.scrollIntoView({ block: 'start' });
        this.crisisHeading.focus({ preventScroll: true });
    }

    closeCrisis() {
        this.crisis.hidden = true;
        for (const button of this._openers()) button.setAttribute('aria-expanded', 'false');
        const back = this.crisisOpener;
        this.crisisOpener = null;
        if (back && back.isConnected && !back.closest('[hidden]')) back.focus();
    }

    _room(room) {
        if (!room) return;
        const text = typeof room.crisis_text === 'string' && room.crisis_text.trim()
            ? room.crisis_text : FALLBACK_CRISIS;
        if (this.crisisText.textContent !== text) this.crisisText.textContent = text;
    }

    /** Removed, the circle ended, or left: the crisis panel stays one press away. */
    _ended() {
        this.you = null;
        this.connected = false;
        this._renderSupport();
        const final = document.querySelector('#view-final:not([hidden])')
            || document.querySelector('#view-left:not([hidden])')
            || document.getElementById('view-final');
        if (final) final.append(this.crisisAfter);
        this.crisisAfter.hidden = false;
    }
}
