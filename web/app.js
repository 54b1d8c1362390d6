// The page: what a person sees and does. This entry point creates the page's parts and wires
// its controls to the modules that act on them (see web/README.md for the map):
//   state.js       the page's state, the circle link and what this tab remembers
//   views.js       which view is up, the notice line, the connection badge, announcements
//   mic_check.js   the microphone check before joining, and the microphone itself
//   people.js      the list of people
//   self_state.js  your own Mute button, whether you are heard, push-to-talk
//   audio_out.js   the circle's sound, "Tap to hear", the wake lock
//   joining.js     the join form, the connection and `joined`
//   refusals.js    the server's errors: the door panel, back to the join form
//   reconnect.js   a lost connection, backoff, offline and online, back to the foreground
//   endings.js     not open yet, ended or sent away, left
// The connection itself lives in protocol.js, audio in rtc.js, and the seams other modules use
// to add to the page in hooks.js.

import { closePeer, onTapToHear } from './audio_out.js';
import { DoorPanel, watchNetwork } from './connection_state.js';
import { Care } from './crisis.js';
import { DeviceControls } from './devices.js';
import { backToJoin, onLeaveClick, retryNotOpen } from './endings.js';
import { FocusKeeper, measureStickyBar } from './focus.js';
import * as hooks from './hooks.js';
import { onJoinSubmit } from './joining.js';
import { checkMicrophone, releaseMicrophone, takeMicrophone } from './mic_check.js';
import { Moderation } from './moderation.js';
import { redrawPeople } from './people.js';
import { cameOnline, dropConnection, onVisible, reconnectNow, wentOffline } from './reconnect.js';
import { retryFromDoor } from './refusals.js';
import { microphonePermission } from './rtc.js';
import {
    endPushToTalk, onKeyDown, onKeyUp, onSelfMuteClick, renderSelfMute,
} from './self_state.js';
import {
    $, MIC_KEY, NAME_KEY, page, readToken, state,
} from './state.js';
import { announce, loadCircleInfo, setNotice, showNameError, showView } from './views.js';

// Made once and kept for the page's life: the support signal and the crisis panel (crisis.js),
// and the keeper that never lets focus fall to the body (focus.js).
let care = null;
let focusKeeper = null;

function start() {
    page.moderation = new Moderation();
    care = new Care();
    page.door = new DoorPanel(retryFromDoor);
    page.devices = new DeviceControls({
        current: () => ({
            track: state.track,
            peer: state.peer,
            muted: !state.you || state.you.muted || !state.track || !state.track.enabled,
        }),
        swap: (stream) => {
            const old = state.mic;
            takeMicrophone(stream, null);
            renderSelfMute();
            return old;
        },
        say: (text) => {
            setNotice(text);
        },
    });
    focusKeeper = new FocusKeeper(() => document.querySelector('main > .view:not([hidden]) h1'));
    measureStickyBar($('controls'));
    page.touchOnly = window.matchMedia('(pointer: coarse)').matches
        && !window.matchMedia('(any-pointer: fine)').matches;
    if (page.touchOnly) {
        document.documentElement.classList.add('touch-only');
        $('rule-speak').textContent = 'To speak, press Unmute. Press Mute again when you are done.';
    }
    state.token = readToken();
    if (!state.token) {
        showView('view-no-link', { focus: false });
        return;
    }
    const savedName = sessionStorage.getItem(NAME_KEY);
    if (savedName) $('display-name').value = savedName;
    try {
        state.micDeviceId = localStorage.getItem(MIC_KEY);
    } catch {
        state.micDeviceId = null;
    }

    hooks.connectBridge({
        send: (message) => Boolean(state.conn && state.conn.send(message)),
        announce: (text, urgent) => announce(text, urgent),
        notify: (text) => setNotice(text),
        redraw: () => redrawPeople(),
        snapshot: () => ({
            you: state.you,
            circle: state.circle,
            participants: state.conn ? state.conn.participants : [],
            connection: state.connection,
        }),
    });

    $('join-form').addEventListener('submit', onJoinSubmit);
    $('display-name').addEventListener('input', () => showNameError(''));
    $('mic-check').addEventListener('click', () => checkMicrophone());
    $('mic-select').addEventListener('change', (event) => {
        state.micDeviceId = event.target.value;
        try {
            localStorage.setItem(MIC_KEY, state.micDeviceId);
        } catch {
            // Not remembered; fine.
        }
        checkMicrophone(state.micDeviceId);
    });
    $('self-mute').addEventListener('click', onSelfMuteClick);
    $('leave').addEventListener('click', onLeaveClick);
    $('tap-to-hear').addEventListener('click', onTapToHear);
    $('reconnect-now').addEventListener('click', reconnectNow);
    $('rejoin').addEventListener('click', () => {
        backToJoin();
        $('join').focus();
    });
    $('retry-now').addEventListener('click', () => {
        $('retry-now').disabled = true;
        window.setTimeout(() => { $('retry-now').disabled = false; }, 2000);
        retryNotOpen();
    });
    $('not-open-back').addEventListener('click', () => {
        backToJoin();
        $('display-name').focus();
    });
    document.addEventListener('keydown', onKeyDown);
    document.addEventListener('keyup', onKeyUp);
    window.addEventListener('blur', endPushToTalk);
    document.addEventListener('visibilitychange', onVisible);
    watchNetwork({ onOffline: wentOffline, onOnline: cameOnline });
    window.addEventListener('pagehide', () => {
        dropConnection();
        closePeer();
        releaseMicrophone();
    });
    showView('view-join', { focus: false });
    // The page works from here on (the tests measure the time to this mark).
    performance.mark('hearth-ready');
    document.body.dataset.ready = 'true';
    loadCircleInfo();
    // Permission already given on an earlier visit: show the meter straight away, no prompt.
    microphonePermission().then((permission) => {
        if (permission === 'granted' && state.phase === 'idle' && !state.mic) checkMicrophone();
    });
}

start();
