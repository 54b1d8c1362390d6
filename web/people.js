// The list of people in the circle: one row per person, updated in place (so keyboard focus
// stays put), in the server's order, with who is speaking; moderation.js adds its marks.

import * as hooks from './hooks.js';
import { renderSelfState } from './self_state.js';
import { $, MODERATORS, page, state } from './state.js';

const MIC_ON_PATH = 'M12 3a3 3 0 0 0-3 3v6a3 3 0 0 0 6 0V6a3 3 0 0 0-3-3z'
    + 'M6 11a6 6 0 0 0 12 0M12 17v4';
const MIC_OFF_PATH = `${MIC_ON_PATH}M4 4l16 16`;

function micIcon() {
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    svg.classList.add('icon');
    const path = document.createElementNS(ns, 'path');
    svg.append(path);
    return svg;
}

// The parts of each row, so an update changes text in place and keeps keyboard focus.
const rowParts = new WeakMap();

function makeRow() {
    const li = document.createElement('li');
    li.className = 'person';
    li.setAttribute('data-testid', 'participant');
    li.tabIndex = -1;

    const who = document.createElement('span');
    who.className = 'who';
    const name = document.createElement('span');
    name.className = 'name';
    const you = document.createElement('span');
    you.className = 'you';
    you.textContent = '(you)';
    const role = document.createElement('span');
    role.className = 'tag';
    role.textContent = 'host';
    // Co-host, floor, hand and reconnecting marks come from moderation.js (person-mark).
    who.append(name, ' ', you, ' ', role);

    const speaking = document.createElement('span');
    speaking.className = 'speaking';
    speaking.setAttribute('data-testid', 'speaking');
    speaking.textContent = 'Speaking';

    const mic = document.createElement('span');
    mic.className = 'mic';
    const micText = document.createElement('span');
    micText.className = 'mic-text';
    mic.append(micIcon(), micText);

    const mute = document.createElement('button');
    mute.type = 'button';
    mute.className = 'small';
    mute.setAttribute('data-testid', 'mute');
    mute.append('Mute');
    const muteWho = document.createElement('span');
    muteWho.className = 'visually-hidden';
    mute.append(muteWho);
    mute.addEventListener('click', () => {
        if (state.conn && li.dataset.id) state.conn.muteParticipant(li.dataset.id);
    });

    li.append(who, speaking, mic, mute);
    rowParts.set(li, { name, you, role, speaking, mic, micText, mute, muteWho });
    return li;
}

function updateRow(li, person) {
    const parts = rowParts.get(li);
    const isYou = state.you !== null && person.id === state.you.id;
    const iAmHost = state.you !== null && MODERATORS.has(state.you.role);
    const speaking = state.speaking.has(person.id) && !person.muted;
    li.dataset.id = person.id;
    li.dataset.name = person.display_name;
    li.dataset.muted = String(person.muted);
    li.dataset.role = person.role;
    li.dataset.speaking = String(speaking);
    li.dataset.connection = person.connection || 'connected';
    li.classList.toggle('is-you', isYou);

    // `label` tells apart two people who chose the same name ("Sam (2)").
    parts.name.textContent = person.label || person.display_name;
    parts.you.hidden = !isYou;
    parts.role.hidden = person.role !== 'host';
    parts.speaking.hidden = !speaking;
    parts.mic.classList.toggle('muted', person.muted);
    parts.mic.querySelector('path').setAttribute('d', person.muted ? MIC_OFF_PATH : MIC_ON_PATH);
    parts.micText.textContent = person.muted ? 'Muted' : 'Mic on';

    const canMute = iAmHost && !isYou && !person.muted;
    if (!canMute && parts.mute.contains(document.activeElement)) li.focus();
    parts.mute.hidden = !canMute;
    parts.muteWho.textContent = ` ${person.label || person.display_name}`;
    hooks.decorate(li, person, state.you);
}

function renderPeople(people) {
    const list = $('participants');
    const seen = new Set();
    let previous = null;
    for (const person of people) {
        let li = state.rows.get(person.id);
        if (!li) {
            li = makeRow();
            state.rows.set(person.id, li);
        }
        updateRow(li, person);
        seen.add(person.id);
        const expected = previous ? previous.nextSibling : list.firstChild;
        if (li !== expected) list.insertBefore(li, expected);
        previous = li;
    }
    for (const [id, li] of state.rows) {
        if (seen.has(id)) continue;
        if (li.contains(document.activeElement)) $('circle-title').focus();
        li.remove();
        state.rows.delete(id);
    }
    $('people-count').textContent = `(${people.length})`;
}

export function redrawPeople() {
    if (state.conn) renderPeople(state.conn.participants);
}

export function renderPeopleAndMarks(people) {
    renderPeople(people);
    if (page.moderation) page.moderation.decorateRows();
}

export function clearPeople() {
    for (const li of state.rows.values()) li.remove();
    state.rows.clear();
    state.speaking = new Set();
}

// Who is speaking now, from the server's `speaking` messages: each one replaces the last (an
// empty list when the circle falls quiet). The server lists only voices that may be heard.
export function onSpeaking(ids) {
    state.speaking = new Set(ids);
    redrawPeople();
    renderSelfState();
}
