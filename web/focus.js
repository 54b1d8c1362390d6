// Focus never falls to the page body (issue 14). A control that disappears under the person's
// focus (Raise hand becomes Lower hand, a lobby row admitted, an unmute request answered)
// hands focus to the control that takes its place, else to the nearest one beside it. On the
// body, holding the space bar is push-to-talk: a lost focus would turn the next Space meant
// for a button into "on air".

// Where focus goes when the control with this test id disappears: the first visible of these.
const SUCCESSORS = {
    'raise-hand': ['lower-hand', 'end-my-turn'],
    'lower-hand': ['raise-hand', 'end-my-turn'],
    'end-my-turn': ['raise-hand', 'lower-hand'],
    'accept-unmute': ['self-mute'],
    'decline-unmute': ['self-mute'],
    // A lobby row let in or turned away: the list itself (not the next person's button, which
    // a second press would act on by mistake); Tab goes on from there.
    admit: ['lobby-list', 'self-mute'],
    deny: ['lobby-list', 'self-mute'],
    'remove-waiting': ['lobby-list', 'self-mute'],
    'end-confirm': ['end', 'self-mute'],
    'need-support': ['need-support', 'self-mute'],
    'door-try-now': ['door-try-now', 'join'],
    'door-wait': ['door-try-now', 'join'],
};

const FOCUSABLE = 'button, [href], input, select, textarea, summary, [tabindex]:not([tabindex="-1"])';

function visible(element) {
    if (!element || !element.isConnected) return false;
    if (element.closest('[hidden]')) return false;
    if (typeof element.checkVisibility === 'function') return element.checkVisibility();
    return element.getClientRects().length > 0;
}

function usable(element) {
    return visible(element) && !element.disabled;
}

export class FocusKeeper {
    /** `fallback()` gives the element to focus when nothing near is left (a heading). */
    constructor(fallback) {
        this.fallback = fallback;
        this.last = null;
        this.lastTestId = null;
        this.ancestors = [];
        this.lastRow = null;
        this.lastNext = null;
        this.lastPrevious = null;
        this.pending = false;
        document.addEventListener('focusin', (event) => this._remember(event.target));
        const observer = new MutationObserver(() => this._check());
        observer.observe(document.body, {
            subtree: true, childList: true, attributes: true, attributeFilter: ['hidden', 'disabled', 'class'],
        });
    }

    _remember(target) {
        if (!(target instanceof Element) || target === document.body) return;
        this.last = target;
        this.lastTestId = target.getAttribute('data-testid');
        // The row it sits in, to find the same control again when the row is drawn anew.
        const row = target.closest('li');
        this.lastRow = row ? row.dataset.id || row.textContent : null;
        this.ancestors = [];
        for (let box = target.parentElement; box && box !== document.body; box = box.parentElement) {
            this.ancestors.push(box);
        }
        this.lastNext = target.nextElementSibling;
        this.lastPrevious = target.previousElementSibling;
    }

    _check() {
        if (this.pending) return;
        this.pending = true;
        // After the redraw that hid the control is complete (several mutations in one task).
        queueMicrotask(() => {
            this.pending = false;
            this.mend();
        });
    }

    /** If the focused control vanished, focus its successor. */
    mend() {
        const active = document.activeElement;
        const lost = !active || active === document.body
            || (active === this.last && !usable(active));
        if (!lost || !this.last || usable(this.last)) return;
        const next = this._successor();
        if (next) {
            next.focus({ preventScroll: false });
        }
    }

    _successor() {
        // The same control, drawn anew (a list rebuilt on an unrelated update): same test id,
        // same person's row.
        if (this.lastTestId) {
            for (const same of document.querySelectorAll(`[data-testid="${this.lastTestId}"]`)) {
                const row = same.closest('li');
                const key = row ? row.dataset.id || row.textContent : null;
                if (key === this.lastRow && usable(same)) return same;
            }
        }
        const candidates = [];
        for (const id of SUCCESSORS[this.lastTestId] || []) {
            for (const element of document.querySelectorAll(`[data-testid="${id}"]`)) {
                // A list named as a successor takes focus as a whole (not a tab stop).
                if (element.matches('ul, ol') && !element.hasAttribute('tabindex')) element.tabIndex = -1;
                candidates.push(element);
            }
        }
        // Beside it: the controls that were next to it, then anything focusable in its box,
        // then in the boxes around that.
        candidates.push(this.lastNext, this.lastPrevious);
        for (const box of this.ancestors) {
            if (box.isConnected) candidates.push(...box.querySelectorAll(FOCUSABLE));
        }
        for (const candidate of candidates) {
            const focusable = candidate instanceof HTMLElement
                && (candidate.matches(FOCUSABLE) || candidate.matches('ul[tabindex], ol[tabindex]'));
            if (focusable && usable(candidate)) {
                return candidate;
            }
        }
        const heading = this.fallback();
        return heading && visible(heading) ? heading : null;
    }
}

/** Keeps --bar-height equal to the sticky control bar's height (it wraps to several rows on a
 * phone), for states.css to keep the time-up cue and focused controls clear of it. */
export function measureStickyBar(bar) {
    if (!bar || typeof ResizeObserver === 'undefined') return;
    const set = () => {
        document.documentElement.style.setProperty('--bar-height', `${Math.ceil(bar.offsetHeight)}px`);
    };
    new ResizeObserver(set).observe(bar);
    set();
}
