// The host's panel: what needs the host at the top (people knocking, support signals, hands),
// per-person controls that hold still, the circle's settings apart from everyday actions, a
// filter to find a person, and a skip link to all of it.
//
// Holding still: a person's controls sit in one slot per action, in the same order on every
// row. An action that does not apply right now (Mute for someone muted) keeps its slot and is
// made invisible (visibility, not display), so nothing slides into its place when a hand goes up,
// a name changes or someone speaks; a click on the empty slot does nothing. Rows are one fixed
// height (names are cut with an ellipsis). The top box has a fixed height and scrolls, so a hand
// going up and down does not move the list under it. Power-granting and irreversible actions
// (make co-host, end the circle) live in the settings below the list; Remove keeps a slot of its
// own at the far end of each row, and making a co-host asks first.
//
// moderation.js holds the server's word (room, moderation view, people) and calls render() and
// decorateRow(); this file only shows it and sends requests. The server checks every command.

import { forget, say } from './announce.js';
import { el } from './dom.js';

const MODERATORS = new Set(['host', 'cohost']);


/** A button whose accessible name says whom it is for: visible `text`, then a hidden `who`. */
function personButton(testid, text, onclick, className = '') {
    const who = el('span', { className: 'visually-hidden' });
    const button = el('button', { type: 'button', className: `host-button ${className}`.trim(), testid, onclick }, text, who);
    return { button, who };
}

function labelOf(person) {
    return person ? person.label || person.display_name : '';
}

// Folded for matching: case and accents do not matter when looking for a person.
function fold(text) {
    return text.normalize('NFD').replace(/\p{M}/gu, '').toLocaleLowerCase();
}

/**
 * Brings `list` in line with `items` (keyed by `id`), reusing existing entries so focus and
 * position hold: `make(item)` builds an entry (an <li>), `update(li, item)` refreshes it.
 */
function syncList(list, items, make, update) {
    const existing = new Map([...list.children].map((li) => [li.dataset.key, li]));
    let previous = null;
    for (const item of items) {
        let li = existing.get(item.id);
        if (!li) {
            li = make(item);
            li.dataset.key = item.id;
        }
        existing.delete(item.id);
        update(li, item);
        const expected = previous ? previous.nextSibling : list.firstChild;
        if (li !== expected) list.insertBefore(li, expected);
        previous = li;
    }
    for (const li of existing.values()) {
        if (li.contains(document.activeElement)) {
            // Focus goes to the list itself while others are left in it, not to the next
            // entry's button (a second press of Enter would let in or turn away the next
            // person by mistake); to the host tools when the list is gone. Never the body.
            if (list.closest('[hidden]') === null && list.children.length > 1) {
                list.tabIndex = -1;
                list.focus();
            } else {
                document.getElementById('host-area').focus();
            }
        }
        li.remove();
    }
}

export class HostPanel {
    constructor(send) {
        this.send = send;
        this.ctx = { you: null, room: null, view: null, people: new Map() };
        this.rowParts = new WeakMap();
        this.filterText = '';
        // Who the filter matched when it was typed: a rename does not make a row pop in or out.
        this.matched = new Map();
        this.knownLobby = new Set();
        this.knownSupport = new Set();
        this._build();
    }

    // --- building ---------------------------------------------------------------------

    _build() {
        const circle = document.getElementById('view-circle');

        // First thing on the page for a host's Tab key.
        this.skip = el('a', { href: '#host-area', className: 'skip-link', testid: 'skip-to-host-tools', hidden: true, onclick: (event) => {
            event.preventDefault();
            this.area.focus();
            this.area.scrollIntoView({ block: 'start' });
        } }, 'Skip to host tools');
        document.body.prepend(this.skip);

        const button = (testid, text, onclick, className = '') => el('button', { type: 'button', className: `host-button ${className}`.trim(), testid, onclick }, text);

        // At the top: the floor, and what needs the host now.
        this.lobbyList = el('ul', { testid: 'lobby-list', className: 'att-list' });
        this.lobbyCount = el('span', { className: 'count' });
        this.lobbyGroup = el('div', { className: 'att-group', hidden: true },
            el('div', { className: 'att-head' },
                el('h3', {}, 'Waiting ', this.lobbyCount),
                button('admit-all', 'Let everyone in', () => this.send({ type: 'admit_all' }))),
            this.lobbyList);
        this.supportList = el('ul', { testid: 'support-list', className: 'att-list' });
        this.supportGroup = el('div', { className: 'att-group support', hidden: true },
            el('h3', {}, 'Asked for support'),
            this.supportList);
        this.queueList = el('ol', { testid: 'hand-queue', className: 'att-list' });
        this.handsGroup = el('div', { className: 'att-group', hidden: true },
            el('h3', {}, 'Hands up'), this.queueList);
        this.calm = el('p', { className: 'hint att-calm' }, 'Nobody is waiting, asking for support or raising a hand.');
        this.attention = el('div', { className: 'attention', testid: 'host-attention' },
            this.supportGroup, this.lobbyGroup, this.handsGroup, this.calm);
        this.area = el('section', { id: 'host-area', className: 'host-area', testid: 'host-panel', hidden: true, tabIndex: -1 },
            el('h2', { id: 'host-area-title' }, 'Host tools'),
            el('div', { className: 'host-row-actions turn-tools' },
                button('next', 'Next speaker', () => this.send({ type: 'next_speaker' })),
                button('end-turn', 'End turn', () => this.send({ type: 'end_turn' })),
                button('extend', '+1 minute', () => this.send({ type: 'extend_turn', seconds: 60 }))),
            this.attention);
        this.area.setAttribute('aria-labelledby', 'host-area-title');
        document.getElementById('extra-panels').append(this.area);

        // Find a person (a circle of 30 is long on a phone).
        this.filter = el('input', { type: 'search', id: 'find-person', testid: 'find-person', autocomplete: 'off', spellcheck: false });
        this.filter.addEventListener('input', () => this._setFilter(this.filter.value));
        this.filter.addEventListener('keydown', (event) => {
            if (event.key === 'Escape' && this.filter.value) {
                this.filter.value = '';
                this._setFilter('');
            }
        });
        this.filterNote = el('p', { className: 'hint', testid: 'find-result', ariaLive: 'polite' });
        this.find = el('div', { className: 'find-person', hidden: true },
            el('label', { htmlFor: 'find-person' }, 'Find a person'), this.filter, this.filterNote);
        const list = document.getElementById('participants');
        list.before(this.find);

        // Below the list: settings, roles, removed people, and ending the circle, apart from the
        // everyday actions.
        this.modeButton = button('mode', '', () => this.send({ type: 'set_speaking_mode', mode: this._room().speaking_mode === 'open' ? 'hand_raise' : 'open' }));
        this.lockButton = button('lock', '', () => this.send({ type: 'set_lock', locked: !this._room().locked }));
        this.lobbyButton = button('lobby-toggle', '', () => this.send({ type: 'set_lobby', enabled: !this._room().lobby }));
        this.shareSelect = el('select', { testid: 'share-time', id: 'share-time', onchange: () => {
            const v = this.shareSelect.value;
            this.send({ type: 'set_share_time', seconds: v ? Number(v) : null });
        } }, el('option', { value: '' }, 'No time box'),
        ...[120, 180, 300].map((s) => el('option', { value: String(s) }, `${s / 60} minutes a share`)));
        this.cohostSelect = el('select', { testid: 'cohost-person', id: 'cohost-person', onchange: () => this._renderCohost() });
        this.cohostButton = button('make-cohost', 'Make co-host…', () => this._askCohost());
        this.cohostRow = el('div', { className: 'field cohost' },
            el('label', { htmlFor: 'cohost-person' }, 'Co-hosts can mute and remove people and end the circle'),
            el('div', { className: 'host-row-actions' }, this.cohostSelect, this.cohostButton));
        this.bansList = el('ul', { testid: 'bans', className: 'att-list' });
        this.endButton = button('end', 'End the circle', () => {
            this.endButton.hidden = true;
            this.endConfirm.hidden = false;
            this.endKeep.hidden = false;
            this.endConfirm.focus();
        }, 'danger');
        this.endConfirm = button('end-confirm', 'Yes, end it for everyone', () => this.send({ type: 'end_circle' }), 'danger');
        this.endKeep = button('end-keep', 'Keep the circle going', () => {
            this.endConfirm.hidden = true;
            this.endKeep.hidden = true;
            this.endButton.hidden = false;
            this.endButton.focus();
        });
        this.endConfirm.hidden = true;
        this.endKeep.hidden = true;
        this.settings = el('section', { id: 'host-settings', className: 'host-settings', testid: 'circle-settings', hidden: true },
            el('h2', { id: 'host-settings-title' }, 'Circle settings'),
            el('div', { className: 'host-row-actions' }, this.modeButton, this.lobbyButton, this.lockButton,
                button('mute-all', 'Mute all', () => this.send({ type: 'mute_all' }))),
            el('div', { className: 'field' }, el('label', { htmlFor: 'share-time' }, 'Time for each share'), this.shareSelect),
            this.cohostRow,
            el('h3', {}, 'Removed'), this.bansList,
            el('div', { className: 'host-row-actions danger-zone' }, this.endButton, this.endConfirm, this.endKeep));
        this.settings.setAttribute('aria-labelledby', 'host-settings-title');
        circle.append(this.settings);

        // Making a co-host hands over power: it asks once more, away from where the click was.
        this.dialogText = el('p', {});
        this.dialogYes = button('cohost-confirm', '', () => {
            const id = this.dialog.dataset.id;
            this.dialog.close();
            if (id) this.send({ type: 'set_role', participant_id: id, role: 'cohost' });
        }, 'primary');
        this.dialog = el('dialog', { className: 'confirm', testid: 'cohost-dialog' },
            el('h2', { id: 'cohost-dialog-title' }, 'Make a co-host?'),
            this.dialogText,
            el('div', { className: 'host-row-actions' },
                button('cohost-cancel', 'Cancel', () => this.dialog.close()), this.dialogYes));
        this.dialog.setAttribute('aria-labelledby', 'cohost-dialog-title');
        this.dialog.addEventListener('close', () => this.cohostButton.focus());
        document.body.append(this.dialog);
    }

    // --- drawing ----------------------------------------------------------------------

    _room() {
        return this.ctx.room || {};
    }

    moderator() {
        const { you } = this.ctx;
        return Boolean(you && MODERATORS.has(you.role));
    }

    /** Redraws the panel from the server's word: `{ you, room, view, people }`. */
    render(ctx) {
        this.ctx = ctx;
        const moderator = this.moderator();
        document.body.classList.toggle('hosting', moderator);
        const list = document.getElementById('participants');
        list.classList.toggle('hosting', moderator);
        this.skip.hidden = !moderator;
        this.area.hidden = !moderator;
        this.settings.hidden = !moderator;
        this.find.hidden = !moderator;
        if (!moderator) {
            if (this.dialog.open) this.dialog.close();
            this.knownLobby.clear();
            this.knownSupport.clear();
            return;
        }
        const room = this._room();
        const view = ctx.view || { lobby: [], bans: [], support: [] };
        this.modeButton.textContent = room.speaking_mode === 'open' ? 'Switch to hand-raise' : 'Switch to open floor';
        this.lockButton.textContent = room.locked ? 'Unlock' : 'Lock';
        this.lockButton.setAttribute('aria-pressed', String(Boolean(room.locked)));
        this.lobbyButton.textContent = room.lobby ? 'Turn lobby off' : 'Turn lobby on';
        this.shareSelect.value = room.share_seconds ? String(room.share_seconds) : '';
        this._renderLobby(view.lobby || []);
        this._renderSupport((view.support || []).map((id) => ctx.people.get(id)).filter(Boolean));
        this._renderHands((room.hand_queue || []).map((id) => ctx.people.get(id)).filter(Boolean));
        this.calm.hidden = !(this.lobbyGroup.hidden && this.supportGroup.hidden && this.handsGroup.hidden);
        syncList(this.bansList, view.bans || [], (ban) => {
            const li = el('li', { className: 'att-item' }, el('span', { className: 'name' }));
            const undo = personButton('unban', 'Undo', () => this.send({ type: 'unban', ban_id: li.dataset.key }));
            li.append(undo.button);
            return li;
        }, (li, ban) => {
            li.querySelector('.name').textContent = ban.display_name;
            li.querySelector('.visually-hidden').textContent = ` removing ${ban.display_name}`;
        });
        this._renderCohostChoices();
    }

    _renderLobby(lobby) {
        this.lobbyGroup.hidden = lobby.length === 0;
        this.lobbyCount.textContent = `(${lobby.length})`;
        syncList(this.lobbyList, lobby, () => {
            const li = el('li', { className: 'att-item', testid: 'waiting-person' }, el('span', { className: 'name' }));
            const id = () => li.dataset.key;
            const admit = personButton('admit', 'Let in', () => this.send({ type: 'admit', participant_id: id() }), 'primary');
            const deny = personButton('deny', 'Not now', () => this.send({ type: 'deny', participant_id: id() }));
            const remove = personButton('remove-waiting', 'Remove', () => this.send({ type: 'remove', participant_id: id() }), 'danger');
            li.append(el('span', { className: 'att-buttons' }, admit.button, deny.button, remove.button));
            return li;
        }, (li, waiting) => {
            const name = waiting.display_name;
            li.querySelector('.name').textContent = waiting.connection === 'reconnecting' ? `${name} (reconnecting…)` : name;
            li.dataset.name = name;
            for (const who of li.querySelectorAll('.visually-hidden')) who.textContent = ` ${name}`;
        });
        // Say who knocks, once per person; a redraw or a reconnection does not repeat it.
        const fresh = lobby.filter((w) => !this.knownLobby.has(w.id));
        if (fresh.length === 1) say(`${fresh[0].display_name} is waiting in the lobby.`, { urgent: true, key: `lobby:${fresh[0].id}` });
        else if (fresh.length > 1) say(`${fresh.length} people are waiting in the lobby.`, { urgent: true });
        const now = new Set(lobby.map((w) => w.id));
        for (const id of this.knownLobby) if (!now.has(id)) forget(`lobby:${id}`);
        this.knownLobby = now;
    }

    _renderSupport(needing) {
        this.supportGroup.hidden = needing.length === 0;
        syncList(this.supportList, needing, () => {
            const li = el('li', { className: 'att-item', testid: 'support-person' }, el('span', { className: 'name' }));
            const floor = personButton('support-give-floor', 'Give floor', () => this.send({ type: 'give_floor', participant_id: li.dataset.key }));
            const show = personButton('support-show', 'Show in list', () => this.showPerson(li.dataset.key));
            li.append(el('span', { className: 'att-buttons' }, floor.button, show.button));
            return li;
        }, (li, person) => {
            const name = labelOf(person);
            li.querySelector('.name').textContent = name;
            const [floorWho, showWho] = li.querySelectorAll('.visually-hidden');
            floorWho.textContent = ` to ${name}`;
            showWho.textContent = `: ${name}`;
        });
        const now = new Set(needing.map((p) => p.id));
        for (const person of needing) {
            if (!this.knownSupport.has(person.id)) {
                say(`${labelOf(person)} asked for support. Only hosts see this.`, { urgent: true, key: `support:${person.id}` });
            }
        }
        for (const id of this.knownSupport) if (!now.has(id)) forget(`support:${id}`);
        this.knownSupport = now;
    }

    _renderHands(hands) {
        this.handsGroup.hidden = hands.length === 0;
        syncList(this.queueList, hands, () => {
            const li = el('li', { className: 'att-item' }, el('span', { className: 'name', testid: 'queued' }));
            const floor = personButton('queued-give-floor', 'Give floor', () => this.send({ type: 'give_floor', participant_id: li.dataset.key }));
            li.append(el('span', { className: 'att-buttons' }, floor.button));
            return li;
        }, (li, person) => {
            const name = labelOf(person);
            li.querySelector('.name').textContent = name;
            li.querySelector('.visually-hidden').textContent = ` to ${name}`;
        });
    }

    _renderCohostChoices() {
        const { you, people } = this.ctx;
        const iAmHost = Boolean(you && you.role === 'host');
        this.cohostRow.hidden = !iAmHost;
        if (!iAmHost) return;
        const choices = [...people.values()].filter((p) => p.id !== you.id && p.role !== 'host');
        const select = this.cohostSelect;
        const chosen = select.value;
        const options = new Map([...select.options].map((o) => [o.value, o]));
        let previous = null;
        for (const person of choices) {
            let option = options.get(person.id);
            if (!option) option = el('option', { value: person.id });
            options.delete(person.id);
            const text = person.role === 'cohost' ? `${labelOf(person)} (co-host)` : labelOf(person);
            if (option.textContent !== text) option.textContent = text;
            const expected = previous ? previous.nextSibling : select.firstChild;
            if (option !== expected) select.insertBefore(option, expected);
            previous = option;
        }
        for (const option of options.values()) option.remove();
        if (chosen && [...select.options].some((o) => o.value === chosen)) select.value = chosen;
        this._renderCohost();
    }

    _renderCohost() {
        const person = this.ctx.people.get(this.cohostSelect.value);
        this.cohostButton.disabled = !person;
        this.cohostButton.textContent = person && person.role === 'cohost' ? 'Make participant again' : 'Make co-host…';
    }

    _askCohost() {
        const person = this.ctx.people.get(this.cohostSelect.value);
        if (!person) return;
        if (person.role === 'cohost') {
            // Taking power back needs no second question.
            this.send({ type: 'set_role', participant_id: person.id, role: 'participant' });
            return;
        }
        const name = labelOf(person);
        this.dialog.dataset.id = person.id;
        this.dialogText.textContent = `${name} will be able to mute and remove people, let people in, and end the circle for everyone.`;
        this.dialogYes.textContent = `Make ${name} a co-host`;
        this.dialog.showModal();
        this.dialog.querySelector('[data-testid="cohost-cancel"]').focus();
    }

    /** Scrolls to a person's row and puts focus on it (clearing a filter that hides it). */
    showPerson(id) {
        const li = document.querySelector(`#participants [data-testid="participant"][data-id="${CSS.escape(id)}"]`);
        if (!li) return;
        if (li.classList.contains('filtered-out')) {
            this.filter.value = '';
            this._setFilter('');
        }
        li.scrollIntoView({ block: 'center' });
        li.focus();
    }

    // --- the rows ---------------------------------------------------------------------

    /** Adds the per-person controls to a row of the list; called on every redraw. */
    decorateRow(li, person) {
        const { you } = this.ctx;
        const moderator = this.moderator();
        let parts = this.rowParts.get(li);
        if (!parts) {
            const id = () => li.dataset.id;
            const floor = personButton('give-floor', 'Give floor', () => this.send({ type: 'give_floor', participant_id: id() }));
            const ask = personButton('ask-unmute', 'Ask to unmute', () => this.send({ type: 'request_unmute', participant_id: id() }));
            const remove = personButton('remove', 'Remove', () => this.send({ type: 'remove', participant_id: id() }), 'danger');
            // app.js's own Mute button (it keeps deciding when it applies) joins its slot.
            const mute = li.querySelector('[data-testid="mute"]');
            if (mute) mute.classList.add('host-button');
            const everyday = el('span', { className: 'everyday' }, floor.button, ask.button, ...(mute ? [mute] : []));
            const apart = el('span', { className: 'apart' }, remove.button);
            const box = el('span', { className: 'host-actions', role: 'group' }, everyday, apart);
            li.append(box);
            parts = { box, floor, ask, remove };
            this.rowParts.set(li, parts);
        }
        const isYou = Boolean(you && person.id === you.id);
        const name = labelOf(person);
        parts.box.hidden = !moderator;
        parts.box.setAttribute('aria-label', `Actions for ${name}`);
        parts.floor.button.hidden = isYou || Boolean(person.has_floor);
        parts.floor.who.textContent = ` to ${name}`;
        parts.ask.button.hidden = isYou || !person.muted;
        parts.ask.who.textContent = ` ${name}`;
        parts.remove.button.hidden = isYou || person.role === 'host';
        parts.remove.who.textContent = ` ${name}`;
        for (const slot of [parts.floor, parts.ask, parts.remove]) {
            // A control that vanishes under focus hands focus to the row, not to the page.
            if (slot.button.hidden && slot.button.contains(document.activeElement)) li.focus();
        }
        this._filterRow(li, person);
    }

    _setFilter(text) {
        this.filterText = fold(text.trim());
        this.matched.clear();
        let shown = 0;
        let total = 0;
        for (const li of document.querySelectorAll('#participants [data-testid="participant"]')) {
            const person = this.ctx.people.get(li.dataset.id);
            if (!person) continue;
            total += 1;
            if (this._filterRow(li, person)) shown += 1;
        }
        this.filterNote.textContent = this.filterText
            ? (shown ? `Showing ${shown} of ${total}.` : 'Nobody here by that name.')
            : '';
    }

    // Whether the row shows under the filter. Decided once per person per filter text, so a
    // rename does not make a row appear or vanish (and the rows below jump) while the host aims.
    _filterRow(li, person) {
        let show = true;
        if (this.filterText) {
            if (!this.matched.has(person.id)) this.matched.set(person.id, fold(labelOf(person)).includes(this.filterText));
            show = this.matched.get(person.id);
        }
        li.classList.toggle('filtered-out', !show);
        li.hidden = !show;
        return show;
    }
}
