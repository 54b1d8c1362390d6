// What the page says about one's own turn: the share timer (shown every second, read out only at
// the moments that matter) and the confirmation that one's hand went up or down.
//
// The speaker is spoken to ("You have one minute left."), never about ("Sam's time is up.").
// Read-outs go through announce.js with a key per share and moment, so a redraw, a reconnect or
// the timer's tick never says the same moment twice; extending a turn makes a new deadline,
// whose moments are news again.

import { forget, say } from './announce.js';

const MINUTE_MS = 60_000;

function nameOf(people, id) {
    const who = people.get(id);
    return who ? who.label || who.display_name : 'Someone';
}

function clock(ms) {
    const left = Math.max(0, Math.round(ms / 1000));
    return `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
}

function duration(ms) {
    const seconds = Math.round(ms / 1000);
    if (seconds % 60 === 0) {
        const minutes = seconds / 60;
        return minutes === 1 ? 'one minute' : `${minutes} minutes`;
    }
    return `${seconds} seconds`;
}

/**
 * The share timer's line: `{ text, cue }` for the current turn, or null when nobody shares.
 * `you` is this person (or null), `now` the time in ms.
 */
export function turnLine(turn, people, you, now) {
    if (!turn) return null;
    const mine = Boolean(you && turn.participant_id === you.id);
    const name = nameOf(people, turn.participant_id);
    if (!turn.ends_at) return { text: mine ? 'You have the floor.' : `${name} is sharing.`, cue: false };
    const left = Date.parse(turn.ends_at) - now;
    if (left > 0) {
        return { text: mine ? `You are sharing · ${clock(left)} left` : `${name} is sharing · ${clock(left)} left`, cue: false };
    }
    // The gentle cue: words and a soft colour, never a sound or a cut.
    return { text: mine ? 'Your time is up. Take a moment to finish.' : `${name}'s time is up.`, cue: true };
}

/**
 * Reads out the moments of the current share that matter to this person: its start, one minute
 * left and time up for the speaker; who shares for the others; time up for hosts as well, who
 * may want to move on.
 */
export function speakTurn(turn, people, you, moderator, now) {
    if (!turn || !you) return;
    const mine = turn.participant_id === you.id;
    const share = `turn:${turn.participant_id}:${turn.started_at}`;
    const name = nameOf(people, turn.participant_id);
    const ends = turn.ends_at ? Date.parse(turn.ends_at) : null;
    const length = ends === null ? null : ends - Date.parse(turn.started_at);
    if (mine) {
        // "You have the floor." itself comes from app.js, which says it for any floor.
        if (length !== null) say(`You have ${duration(length)}.`, { key: `${share}:start`, once: true });
    } else {
        say(`${name} has the floor.`, { key: `${share}:start`, once: true });
    }
    if (ends === null) return;
    const left = ends - now;
    if (mine && left > 0 && left <= MINUTE_MS && length > MINUTE_MS) {
        say('You have one minute left.', { key: `${share}:minute:${turn.ends_at}`, once: true });
    }
    if (left <= 0) {
        if (mine) say('Your time is up. Take a moment to finish.', { key: `${share}:up:${turn.ends_at}`, once: true });
        else if (moderator) say(`${name}'s time is up.`, { key: `${share}:up:${turn.ends_at}`, once: true });
    }
}

/**
 * Confirms one's own hand going up or down, from the server's hand queue (`room_updated` comes
 * after the person's own update, so the place in the queue is known by then). `place` is the
 * 1-based place now (0: not queued).
 */
export function confirmHand(wasQueued, place, hasFloor) {
    const queued = place > 0;
    if (wasQueued === queued) return;
    if (queued) {
        say(`Your hand is raised. You are number ${place} in the queue.`, { key: 'hand' });
    } else if (!hasFloor) {
        say('Your hand is lowered.', { key: 'hand' });
    } else {
        // Lowered by being given the floor: "You have the floor." says it already.
        forget('hand');
    }
}
