// The connection to a Hearth server: one WebSocket, the messages of docs/protocol.md, and the
// list of people as the server last described it. No DOM here: app.js draws, this file talks.

import { useIceServers } from './rtc.js';

export const PROTOCOL_VERSION = 1;

// Close code the server uses when the link is unknown or its circle is not open now.
export const CLOSE_NOT_OPEN = 4404;

/** The WebSocket address on the page's own host (tokens travel in messages, never here). */
export function socketUrl(loc = window.location) {
    const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${loc.host}/ws`;
}

/**
 * One connection to the server.
 *
 * Callbacks (all optional), set as properties:
 *   onJoined(you, circle, participants)   `joined` arrived
 *   onParticipants(participants)          the list changed (joined, updated, left)
 *   onParticipantJoined(participant)
 *   onParticipantUpdated(participant, by) `by` is who caused it when not the person themselves
 *   onParticipantLeft(participant)        the person as last known
 *   onAnswer(sdp)
 *   onError(code, message, ref, error)   (error: the whole message, with its details)
 *   onRoom(room)                          the room view changed (`joined`, `waiting`, `room_updated`)
 *   onSpeaking(ids, levels)               who is speaking now, loudest first (`speaking`)
 *   onMessageFirst(message)               every message, before the callbacks above (moderation.js)
 *   onMessage(message)                    every message, after the callbacks above (for hooks.js)
 *   onClose(code, reason, wasLeaving)     the socket is gone
 */
export class ServerConnection {
    constructor(url = socketUrl()) {
        this.url = url;
        this.socket = null;
        this.you = null;
        this.circle = null;
        // Keyed by id; a Map keeps insertion order, which is the join order the server gave.
        this.people = new Map();
        this.leaving = false;
        this.seatToken = null;
        // Speaking mode, floor, hand queue, turn... (docs/protocol.md), or null on older servers.
        this.room = null;
    }

    /** Opens the socket; resolves once it is open, rejects if it cannot be opened. */
    connect() {
        return new Promise((resolve, reject) => {
            let opened = false;
            const socket = new WebSocket(this.url);
            this.socket = socket;
            socket.onopen = () => {
                opened = true;
                resolve();
            };
            socket.onmessage = (event) => this._receive(event.data);
            socket.onerror = () => {
                if (!opened) reject(new Error('The connection could not be opened.'));
            };
            socket.onclose = (event) => {
                if (this.socket !== socket) return;
                this.socket = null;
                if (!opened) {
                    reject(new Error('The connection could not be opened.'));
                    return;
                }
                this._call('onClose', event.code, event.reason, this.leaving);
            };
        });
    }

    get participants() {
        return [...this.people.values()];
    }

    get isOpen() {
        return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
    }

    /**
     * Takes a seat. `extra` may hold `seat_token` (resume the seat this page held before a
     * dropped connection), `device_key` (this browser's random key) and `passcode`; the server
     * ignores what it does not know.
     */
    join(token, displayName, muted, extra = {}) {
        this.leaving = false;
        const message = { type: 'join', token, display_name: displayName, muted };
        for (const [key, value] of Object.entries(extra)) {
            if (value !== null && value !== undefined && value !== '') message[key] = value;
        }
        this._send(message);
    }

    /** Sends any message (for hooks.js); returns whether it went out. */
    send(message) {
        return this._send(message);
    }

    offer(sdp) {
        this._send({ type: 'offer', sdp });
    }

    mute(muted) {
        this._send({ type: 'mute', muted });
    }

    muteParticipant(participantId) {
        this._send({ type: 'mute_participant', participant_id: participantId });
    }

    /** Gives up the seat; the server closes the socket with 1000. */
    leave() {
        this.leaving = true;
        this._send({ type: 'leave' });
    }

    /** Closes without ceremony (the server treats it as leaving). Fires no onClose. */
    close() {
        const socket = this.socket;
        this.socket = null;
        if (socket) {
            socket.onclose = null;
            socket.onmessage = null;
            socket.close(1000);
        }
    }

    _send(message) {
        if (!this.isOpen) return false;
        this.socket.send(JSON.stringify(message));
        return true;
    }

    _call(name, ...args) {
        const callback = this[name];
        if (typeof callback === 'function') callback(...args);
    }

    _receive(data) {
        let message;
        try {
            message = JSON.parse(data);
        } catch {
            return;
        }
        if (!message || typeof message.type !== 'string') return;
        // moderation.js sees every message first (it keeps the room and host views, and the
        // reason for a removal before the page reacts to it).
        this._call('onMessageFirst', message);
        switch (message.type) {
        case 'joined':
            useIceServers(message.ice_servers);
            this.you = message.you;
            this.seatToken = typeof message.seat_token === 'string' ? message.seat_token : null;
            if (message.room) this.room = message.room;
            this.circle = message.circle;
            this.people = new Map(message.participants.map((p) => [p.id, p]));
            if (!this.people.has(message.you.id)) this.people.set(message.you.id, message.you);
            this._call('onJoined', message.you, message.circle, this.participants);
            this._call('onParticipants', this.participants);
            break;
        case 'answer':
            this._call('onAnswer', message.sdp);
            break;
        case 'participant_joined':
            this.people.set(message.participant.id, message.participant);
            this._call('onParticipantJoined', message.participant);
            this._call('onParticipants', this.participants);
            break;
        case 'participant_updated': {
            const person = message.participant;
            this.people.set(person.id, person);
            if (this.you && person.id === this.you.id) this.you = person;
            this._call('onParticipantUpdated', person, message.by ?? null);
            this._call('onParticipants', this.participants);
            break;
        }
        case 'participant_left': {
            const gone = this.people.get(message.participant_id);
            this.people.delete(message.participant_id);
            if (gone) this._call('onParticipantLeft', gone);
            this._call('onParticipants', this.participants);
            break;
        }
        case 'speaking':
            // Who is speaking, loudest first, and a 0-10 level each (at most 5 a second).
            if (Array.isArray(message.speakers)) {
                const ids = message.speakers.filter((id) => typeof id === 'string');
                this._call('onSpeaking', ids, message.levels ?? {});
            }
            break;
        case 'error':
            // The whole message too: some errors carry documented details (next_starts_at).
            this._call('onError', message.code, message.message ?? '', message.ref ?? null, message);
            break;
        case 'waiting':
            if (typeof message.seat_token === 'string') this.seatToken = message.seat_token;
            if (message.room) this.room = message.room;
            break;
        case 'room_updated':
            if (message.room) {
                this.room = message.room;
                this._call('onRoom', message.room);
            }
            break;
        default:
            // A newer server may say more than this client knows: hooks.js listeners may use it.
            break;
        }
        this._call('onMessage', message);
    }
}
