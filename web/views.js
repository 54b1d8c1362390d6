// What the page shows and says: which view is up, the notice line, the join form's status,
// the connection badge and banner, screen-reader announcements, and the circle's intro on the
// join view (who hosts, until when).

import { say } from './announce.js';
import * as hooks from './hooks.js';
import { renderSelfState } from './self_state.js';
import { $, page, state } from './state.js';

const VIEWS = ['view-join', 'view-not-open', 'view-circle', 'view-left', 'view-no-link'];

export function showView(id, { focus = true } = {}) {
    for (const view of VIEWS) $(view).hidden = view !== id;
    if (focus) {
        const heading = $(id).querySelector('h1');
        if (heading) heading.focus({ preventScroll: false });
    }
}

// Read out by screen readers (announce.js): `key` keeps a retry or a redraw from saying the
// same sentence again.
export function announce(text, urgent = false, key = null) {
    say(text, { urgent, key });
}

// The visible notice line. It is not a live region (a region re-reads on every change); what
// it says is read out once here, unless the caller has just said it more urgently itself.
export function setNotice(text, { quiet = false } = {}) {
    if ($('notice').textContent === text) return;
    $('notice').textContent = text;
    if (text && !quiet) announce(text);
}

export function setJoinStatus(text) {
    $('join-status').textContent = text;
}

export function showNameError(text) {
    const error = $('name-error');
    const input = $('display-name');
    error.textContent = text;
    error.hidden = !text;
    if (text) {
        input.setAttribute('aria-invalid', 'true');
    } else {
        input.removeAttribute('aria-invalid');
    }
}

export function joinLabel() {
    return state.micReason && !state.track ? 'Join to listen' : 'Join';
}

export function setJoining(busy) {
    const button = $('join');
    button.disabled = busy;
    button.textContent = busy ? 'Joining…' : joinLabel();
}

const CONNECTION_TEXT = {
    idle: 'Not connected',
    connecting: 'Connecting…',
    connected: 'Connected',
    reconnecting: 'Reconnecting…',
    offline: 'Offline',
    left: 'Left',
};

const OFFLINE_TEXT = 'Nobody hears you and you hear nobody until the network is back; then '
    + 'this page reconnects by itself. Your place is kept for a minute.';

export function setConnection(connection) {
    if (state.connection === connection) return;
    state.connection = connection;
    $('connection-state').dataset.state = connection;
    $('connection-text').textContent = CONNECTION_TEXT[connection];
    $('reconnect-banner').hidden = connection !== 'reconnecting' && connection !== 'offline';
    $('reconnect-now').hidden = connection === 'offline';
    if (connection === 'offline') {
        $('reconnect-text').replaceChildren(
            Object.assign(document.createElement('strong'), { textContent: 'You are offline.' }),
            ` ${OFFLINE_TEXT}`,
        );
    }
    // Said once per lost connection; the banner's countdown is not a live region, so each
    // retry does not read it out again.
    if (connection === 'reconnecting') {
        announce('The connection was lost. Reconnecting… Your place is kept for a minute.', true, 'connection');
    }
    renderSelfState();
    hooks.emit('hearth:connection', { type: 'hearth:connection', state: connection });
}

export async function loadCircleInfo() {
    let info;
    try {
        const response = await fetch('/circle-info', {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ token: state.token }),
            cache: 'no-store',
            credentials: 'omit',
        });
        if (!response.ok) return;
        info = await response.json();
    } catch {
        return;
    }
    if (!info || !info.open || !info.circle) return;
    if (page.moderation) page.moderation.circleInfo(info); // moderation hook
    $('join-title').textContent = `Join ${info.circle.title}`;
    document.title = `${info.circle.title} · Hearth`;
    const when = describeTime(info.circle);
    $('intro-when').textContent = when ? `The circle is open now. ${when}` : 'The circle is open now.';
    $('intro-when').hidden = false;
    const hosts = Array.isArray(info.hosts) ? info.hosts.filter((h) => typeof h === 'string') : [];
    const hostsText = $('intro-hosts');
    if (info.role === 'host') {
        hostsText.textContent = 'You are joining as a host.';
    } else if (hosts.length > 0) {
        hostsText.textContent = `Hosted by ${listOf(hosts)}.`;
    } else {
        hostsText.textContent = 'A host will be with you soon.';
    }
    hostsText.hidden = false;
}

function listOf(names) {
    if (names.length < 2) return names.join('');
    return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

export function describeTime(circle) {
    const ends = new Date(circle.ends_at);
    if (Number.isNaN(ends.getTime())) return '';
    const time = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
    return `Until ${time.format(ends)}, your time.`;
}
