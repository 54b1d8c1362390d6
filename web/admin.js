// Hearth admin console: schedule series through /api/v1 with a bearer token.
// The token lives in sessionStorage only (gone when the tab closes) and is sent only to
// this server. Everything shown comes from the API; nothing here decides a schedule.

import { el } from "./dom.js";

const API = "/api/v1";
const TOKEN_KEY = "hearth-admin-token";
const DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];
const DAY_NAMES = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const viewerZone = Intl.DateTimeFormat().resolvedOptions().timeZone;

const $ = (id) => document.getElementById(id);
let weekStart = startOfWeek(new Date());
let seriesById = new Map();
// Host link URLs exist only in the answer that made or rotated them (stored hashed): kept
// here, in this tab's memory, so the admin can copy them until the page is left.
const freshLinks = new Map();
let openOccurrence = null; // the occurrence shown in the occurrence panel
let moderationSeries = null; // the series whose settings are in the moderation form
let editedSeries = null; // the id of the series in the form, while it is being edited

class ApiError extends Error {
    constructor(status, error) {
        super(error?.message || `HTTP ${status}`);
        this.status = status;
        this.field = error?.field || null;
    }
}

async function api(method, path, body) {
    const headers = { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ""}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(API + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
    });
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (!response.ok) {
        if (response.status === 401) signOut("That token was not accepted.");
        throw new ApiError(response.status, data?.error);
    }
    return data;
}

// --- time -------------------------------------------------------------------------------

function startOfWeek(date) {
    const d = new Date(date.getFullYear(), date.getMonth(), date.getDate());
    d.setDate(d.getDate() - ((d.getDay() + 6) % 7)); // Monday
    return d;
}

function zoneOffsetMs(instantMs, zone) {
    const parts = new Intl.DateTimeFormat("en-US", {
        timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit",
    }).formatToParts(new Date(instantMs));
    const get = (type) => Number(parts.find((p) => p.type === type).value);
    const asUtc = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second"));
    return asUtc - instantMs;
}

// A wall-clock date and time in an IANA zone, as an ISO instant (UTC).
function zonedToIso(dateStr, timeStr, zone) {
    const [y, m, d] = dateStr.split("-").map(Number);
    const [hh, mm] = timeStr.split(":").map(Number);
    const wall = Date.UTC(y, m - 1, d, hh, mm);
    let instant = wall - zoneOffsetMs(wall, zone);
    instant = wall - zoneOffsetMs(instant, zone); // settle across a DST change
    return new Date(instant).toISOString();
}

function formatIn(iso, zone, options) {
    return new Intl.DateTimeFormat(undefined, { timeZone: zone, ...options }).format(new Date(iso));
}

const dateTimeOptions = { weekday: "short", day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit" };

// --- sign in ----------------------------------------------------------------------------

function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    freshLinks.clear();
    $("occurrence").hidden = true;
    $("moderation").hidden = true;
    $("console").hidden = true;
    $("sign-in").hidden = false;
    const error = $("sign-in-error");
    error.textContent = message || "";
    error.hidden = !message;
}

async function signIn(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    try {
        await refresh();
    } catch (error) {
        if (!(error instanceof ApiError && error.status === 401)) throw error;
        return;
    }
    $("sign-in").hidden = true;
    $("console").hidden = false;
    $("token").value = "";
    // The form that had the focus is hidden now: the week takes it, not the body.
    if (document.activeElement === document.body || $("sign-in").contains(document.activeElement)) $("week-title").focus();
}

// --- the week ---------------------------------------------------------------------------

async function renderWeek() {
    const end = new Date(weekStart);
    end.setDate(end.getDate() + 7);
    const query = new URLSearchParams({ from: weekStart.toISOString(), to: end.toISOString() });
    const { occurrences } = await api("GET", `/occurrences?${query}`);
    $("week-label").textContent = `${formatIn(weekStart.toISOString(), viewerZone, { day: "numeric", month: "short" })} – ${formatIn(new Date(end - 1).toISOString(), viewerZone, { day: "numeric", month: "short", year: "numeric" })}`;
    const week = $("week");
    week.replaceChildren();
    for (let i = 0; i < 7; i++) {
        const day = new Date(weekStart);
        day.setDate(day.getDate() + i);
        const next = new Date(day);
        next.setDate(next.getDate() + 1);
        const li = document.createElement("li");
        const h = document.createElement("h3");
        h.textContent = formatIn(day.toISOString(), viewerZone, { weekday: "long", day: "numeric" });
        const list = document.createElement("ul");
        for (const o of occurrences) {
            const at = new Date(o.starts_at);
            if (at < day || at >= next) continue;
            const item = document.createElement("li");
            item.className = o.status;
            item.dataset.occurrenceId = o.id;
            let text = `${formatIn(o.starts_at, viewerZone, { hour: "2-digit", minute: "2-digit" })} ${o.title}`;
            if (o.status === "cancelled") text += " (cancelled)";
            else if (o.status === "live" || o.status === "open") text += ` · ${o.status}, ${o.present} in it`;
            if (o.moved && o.status !== "cancelled") text += " (moved)";
            const manage = document.createElement("button");
            manage.type = "button";
            manage.textContent = "Manage";
            manage.dataset.testid = "manage-occurrence";
            manage.setAttribute("aria-label", `Manage ${text}, ${formatIn(o.starts_at, viewerZone, { weekday: "long", day: "numeric", month: "long" })}`);
            manage.addEventListener("click", () => showOccurrence(o).catch(showOccurrenceError));
            item.append(text, " ", manage);
            list.append(item);
        }
        li.append(h, list);
        week.append(li);
    }
}

// --- series -----------------------------------------------------------------------------

// Copying is said in the lasting live region too: "Copied" on the button alone is not read
// out by every screen reader.
function copyButton(label, url) {
    const button = el("button", { type: "button", testid: "copy" }, `Copy ${label}`);
    button.addEventListener("click", async () => {
        try {
            await navigator.clipboard.writeText(url);
            button.textContent = "Copied";
            say("Link copied.");
        } catch {
            button.textContent = "Select the link and copy it";
            say("The link could not be copied: select it and copy it.");
        }
        setTimeout(() => { button.textContent = `Copy ${label}`; }, 2000);
    });
    return button;
}

function linkLine(label, url) {
    const li = document.createElement("li");
    const code = document.createElement("code");
    code.textContent = url;
    li.append(`${label}: `, code, " ", copyButton("link", url));
    return li;
}

async function renderSeries() {
    const { series } = await api("GET", "/series");
    seriesById = new Map(series.map((s) => [s.id, s]));
    const list = $("series-list");
    list.replaceChildren();
    for (const s of series) {
        const li = document.createElement("li");
        li.dataset.seriesId = s.id;
        const title = document.createElement("h3");
        title.textContent = s.title;
        const when = document.createElement("p");
        when.textContent = `${describeRule(s)} · ${s.duration_minutes} min · ${s.timezone}` +
            (s.capacity ? ` · up to ${s.capacity}` : "") + (s.public ? " · public" : "");
        const next = document.createElement("ol");
        next.className = "next-dates";
        next.dataset.testid = "next-dates";
        for (const start of s.next_starts) {
            const item = document.createElement("li");
            item.textContent = formatIn(start, s.timezone, dateTimeOptions);
            next.append(item);
        }
        const links = document.createElement("ul");
        links.className = "links";
        links.append(linkLine("Join link (everyone)", s.join_url));
        const edit = el("button", { type: "button", testid: "edit", onclick: () => startEdit(s) }, "Edit");
        const remove = document.createElement("button");
        remove.type = "button";
        remove.textContent = "Delete";
        remove.addEventListener("click", async () => {
            if (!confirm(`Delete “${s.title}” and all its occurrences?`)) return;
            await api("DELETE", `/series/${encodeURIComponent(s.id)}`);
            await refresh();
            // The button went with the series: the list's heading keeps the focus.
            $("series-title").focus();
            say(`Deleted “${s.title}”.`);
        });
        const nextTitle = document.createElement("p");
        nextTitle.textContent = s.next_starts.length ? "Next dates:" : "No dates ahead.";
        const moderation = document.createElement("button");
        moderation.type = "button";
        moderation.textContent = "Moderation settings";
        moderation.dataset.testid = "moderation-settings";
        moderation.addEventListener("click", () => showModeration(s).catch((error) => say(`The settings could not be loaded: ${error.message}`)));
        li.append(title, when, nextTitle, next, links, roster(s), edit, " ", moderation, " ", remove);
        list.append(li);
    }
}

function describeRule(s) {
    if (!s.rrule) return "Once";
    const parts = Object.fromEntries(s.rrule.split(";").map((p) => p.split("=")));
    const dayName = (code) => DAY_NAMES[DAYS.indexOf(code)] || code;
    if (parts.FREQ === "WEEKLY" && parts.BYDAY) return `Weekly on ${parts.BYDAY.split(",").map(dayName).join(", ")}`;
    const monthly = /^(-?\d)([A-Z]{2})$/.exec(parts.BYDAY || "");
    if (parts.FREQ === "MONTHLY" && monthly) {
        const nth = { 1: "first", 2: "second", 3: "third", 4: "fourth", "-1": "last" }[monthly[1]];
        return `Monthly on the ${nth} ${dayName(monthly[2])}`;
    }
    return s.rrule;
}

// --- errors -----------------------------------------------------------------------------

function showError(id, error) {
    const box = $(id);
    box.textContent = error ? error.message : "";
    box.hidden = !error;
}

// What a list action did, in the page's one lasting live region: the series list is drawn
// anew after every change, and a region drawn anew is not reliably read out.
function say(message) {
    const status = $("series-status");
    status.textContent = "";
    // A fresh text node in a second task, so the same words twice are read twice.
    setTimeout(() => { status.textContent = message; }, 50);
}

// --- the host-link roster ---------------------------------------------------------------

function roster(s) {
    const box = document.createElement("div");
    box.className = "roster-box";
    box.dataset.testid = "roster";
    const heading = document.createElement("h4");
    heading.textContent = "Host links";
    heading.tabIndex = -1; // where the focus goes when the last link is revoked
    heading.dataset.testid = "roster-title";
    const error = document.createElement("p");
    error.className = "error";
    error.setAttribute("role", "alert");
    error.dataset.testid = "roster-error";
    error.hidden = true;
    const fail = (e) => { error.textContent = e.message; error.hidden = false; };
    // Every change redraws the list, so the control that was used is gone: the focus moves
    // to the same place in the new drawing (or the nearest sensible one), never to the body.
    const done = async (message, hostId, testid) => {
        await refresh();
        focusInRoster(s.id, hostId, testid);
        say(message);
    };
    const base = `/series/${encodeURIComponent(s.id)}/host-links`;
    const list = document.createElement("ul");
    list.className = "roster";
    for (const host of s.host_links) {
        const li = document.createElement("li");
        li.dataset.testid = "host-link";
        li.dataset.linkId = host.id;
        li.dataset.hostName = host.name;
        const name = document.createElement("input");
        name.value = host.name;
        name.maxLength = 100;
        name.setAttribute("aria-label", `Name of the host link “${host.name}”`);
        name.dataset.testid = "host-name";
        const url = host.url || freshLinks.get(host.id);
        const rename = async () => {
            try {
                const renamed = await api("PATCH", `${base}/${encodeURIComponent(host.id)}`, { name: name.value });
                await done(`Renamed to “${renamed.name}”.`, host.id, "host-name");
            } catch (e) { fail(e); }
        };
        const rotate = async () => {
            if (!confirm(`Give “${host.name}” a new link? The old one stops working at once.`)) return;
            try {
                const link = await api("POST", `${base}/${encodeURIComponent(host.id)}/rotate`);
                freshLinks.set(link.id, link.url);
                await done(`New link for “${host.name}”; the old one no longer works. Copy it now, it is shown only this once.`, link.id, "copy");
            } catch (e) { fail(e); }
        };
        const revoke = async () => {
            if (!confirm(`Revoke the host link of “${host.name}”? It stops working at once.`)) return;
            try {
                await api("DELETE", `${base}/${encodeURIComponent(host.id)}`);
                freshLinks.delete(host.id);
                // The next link in the list takes the focus, else the one before, else the heading.
                const at = s.host_links.findIndex((h) => h.id === host.id);
                const neighbour = s.host_links[at + 1] || s.host_links[at - 1];
                await done(`Revoked the host link of “${host.name}”.`, neighbour?.id, "host-name");
            } catch (e) { fail(e); }
        };
        li.append(
            name, " ",
            el("button", { type: "button", testid: "host-rename", onclick: rename }, "Save name"), " ",
            el("button", { type: "button", testid: "host-rotate", onclick: rotate }, "New link"), " ",
            el("button", { type: "button", testid: "host-revoke", onclick: revoke }, "Revoke"),
        );
        const shown = document.createElement("p");
        if (url) {
            shown.className = "fresh";
            const code = document.createElement("code");
            code.textContent = url;
            code.dataset.testid = "host-url";
            shown.append("Copy it now, it is shown only this once: ", code, " ", copyButton("link", url));
        } else {
            shown.className = "hint";
            shown.textContent = "Link hidden (stored hashed). “New link” makes a new one to hand out.";
        }
        li.append(shown);
        list.append(li);
    }
    const add = document.createElement("form");
    add.noValidate = true;
    const label = document.createElement("label");
    label.className = "inline";
    const newName = document.createElement("input");
    newName.maxLength = 100;
    newName.dataset.testid = "new-host-name";
    label.append("New host's name ", newName);
    const submit = document.createElement("button");
    submit.type = "submit";
    submit.textContent = "Add host link";
    submit.dataset.testid = "host-add";
    add.append(label, " ", submit);
    add.addEventListener("submit", async (event) => {
        event.preventDefault();
        try {
            const link = await api("POST", base, { name: newName.value });
            freshLinks.set(link.id, link.url);
            await done(`Host link added for “${link.name}”. Copy it now, it is shown only this once.`, link.id, "copy");
        } catch (e) { fail(e); }
    });
    box.append(heading, list, add, error);
    return box;
}

function focusInRoster(seriesId, hostId, testid) {
    const entry = [...$("series-list").children].find((li) => li.dataset.seriesId === seriesId);
    const box = entry?.querySelector("[data-testid=roster]");
    const row = hostId ? [...(box?.querySelectorAll("[data-testid=host-link]") || [])].find((li) => li.dataset.linkId === hostId) : null;
    const target = row?.querySelector(`[data-testid="${testid}"]`) || row?.querySelector("input")
        || box?.querySelector("[data-testid=roster-title]") || $("series-title");
    target.focus();
}

// --- one occurrence ---------------------------------------------------------------------

function showOccurrenceError(error) {
    showError("occurrence-error", error);
}

async function showOccurrence(o) {
    openOccurrence = o;
    const zone = o.timezone;
    $("occurrence-title").textContent = `${o.title}, ${formatIn(o.starts_at, zone, dateTimeOptions)}`;
    let when = `${formatIn(o.starts_at, zone, dateTimeOptions)} to ${formatIn(o.ends_at, zone, { hour: "2-digit", minute: "2-digit" })} (${zone})`;
    if (zone !== viewerZone) when += `; ${formatIn(o.starts_at, viewerZone, dateTimeOptions)} in your zone`;
    when += `. Status: ${o.status}.`;
    if (o.moved) when += ` Moved from ${formatIn(o.original_start, zone, dateTimeOptions)}.`;
    $("occurrence-when").textContent = when;
    const counts = [];
    if (o.status === "live" || o.status === "open") counts.push(`${o.present} in it now`);
    counts.push(`${o.attended} ${o.attended === 1 ? "person" : "people"} attended`);
    $("occurrence-attendance").textContent = `Attendance: ${counts.join(", ")}.`;
    const attendees = $("occurrence-attendees");
    attendees.replaceChildren(...(o.attendees || []).map((a) => {
        const li = document.createElement("li");
        li.textContent = a.display_name;
        return li;
    }));
    const cancelled = o.status === "cancelled";
    $("occurrence-cancel").textContent = cancelled ? "Restore this meeting" : "Cancel this meeting";
    const local = new Intl.DateTimeFormat("en-CA", {
        timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    }).formatToParts(new Date(o.starts_at));
    const get = (type) => local.find((p) => p.type === type).value;
    $("move-date").value = `${get("year")}-${get("month")}-${get("day")}`;
    $("move-time").value = `${get("hour")}:${get("minute")}`;
    $("move-legend").textContent = `Move this meeting (date and time in ${zone})`;
    showOccurrenceError(null);
    $("occurrence-status").textContent = "";
    $("occurrence").hidden = false;
    $("occurrence-title").focus();
    await renderAudit(o);
}

async function renderAudit(o) {
    const { entries } = await api("GET", `/circles/${encodeURIComponent(o.id)}/audit`);
    const body = $("audit").querySelector("tbody");
    body.replaceChildren();
    for (const entry of entries) {
        const tr = document.createElement("tr");
        const cells = [
            formatIn(entry.at, viewerZone, dateTimeOptions),
            entry.action.replaceAll("_", " "),
            `${entry.actor.label} (${entry.actor.role})`,
            entry.target ? entry.target.label : "",
            entry.detail,
        ];
        for (const text of cells) {
            const td = document.createElement("td");
            td.textContent = text;
            tr.append(td);
        }
        body.append(tr);
    }
    $("audit").hidden = entries.length === 0;
    $("audit-empty").hidden = entries.length !== 0;
}

async function changeOccurrence(change, done) {
    const o = openOccurrence;
    showOccurrenceError(null);
    $("occurrence-status").textContent = "";
    try {
        const changed = await api(
            "PATCH", `/series/${encodeURIComponent(o.series_id)}/occurrences/${encodeURIComponent(o.id)}`, change,
        );
        await refresh();
        await showOccurrence(changed);
        $("occurrence-status").textContent = done;
    } catch (error) {
        showOccurrenceError(error);
    }
}

function moveOccurrence(event) {
    event.preventDefault();
    const date = $("move-date").value;
    const time = $("move-time").value;
    if (!date || !time) {
        showOccurrenceError(new ApiError(422, { message: "Choose a date and a time to move the meeting to.", field: "starts_at" }));
        return;
    }
    changeOccurrence({ starts_at: zonedToIso(date, time, openOccurrence.timezone) }, "Moved.");
}

// --- a series' moderation settings ------------------------------------------------------

let crisisFieldKnown = false; // whether the API has the crisis text (shown only then)

async function showModeration(s) {
    moderationSeries = s;
    const settings = await api("GET", `/series/${encodeURIComponent(s.id)}/moderation`);
    $("moderation-title").textContent = `Moderation settings: ${s.title}`;
    $("speaking-mode").value = settings.speaking_mode;
    $("no-host-policy").value = settings.no_host_policy;
    $("share-seconds").value = settings.share_seconds ?? "";
    $("lobby").checked = settings.lobby;
    $("wait-for-host").checked = settings.wait_for_host;
    $("allow-rename").checked = settings.allow_rename;
    $("passcode").value = "";
    $("passcode-remove").checked = false;
    $("passcode-state").textContent = settings.passcode_set ? "A passcode is set." : "No passcode.";
    crisisFieldKnown = "crisis_text" in settings;
    $("crisis-label").hidden = !crisisFieldKnown;
    $("crisis-text").value = settings.crisis_text ?? "";
    showError("moderation-error", null);
    $("moderation-status").textContent = "";
    $("moderation").hidden = false;
    $("moderation-title").focus();
}

// Back to the button that opened the form (the list may have been drawn anew meanwhile).
function closeModeration() {
    $("moderation").hidden = true;
    const entry = [...$("series-list").children].find((li) => li.dataset.seriesId === moderationSeries?.id);
    const opener = entry?.querySelector("[data-testid=moderation-settings]");
    (opener || $("series-title")).focus();
}

async function saveModeration(event) {
    event.preventDefault();
    showError("moderation-error", null);
    $("moderation-status").textContent = "";
    const share = $("share-seconds").value.trim();
    const body = {
        speaking_mode: $("speaking-mode").value,
        lobby: $("lobby").checked,
        wait_for_host: $("wait-for-host").checked,
        no_host_policy: $("no-host-policy").value,
        allow_rename: $("allow-rename").checked,
        // Empty is "no share time"; the server checks the rest (and says what is wrong).
        share_seconds: share === "" ? null : Number(share),
    };
    if (crisisFieldKnown) body.crisis_text = $("crisis-text").value;
    if ($("passcode-remove").checked) body.passcode = null;
    else if ($("passcode").value) body.passcode = $("passcode").value;
    try {
        const saved = await api("PUT", `/series/${encodeURIComponent(moderationSeries.id)}/moderation`, body);
        $("passcode").value = "";
        $("passcode-remove").checked = false;
        $("passcode-state").textContent = saved.passcode_set ? "A passcode is set." : "No passcode.";
        $("moderation-status").textContent = "Saved. Meetings of this series use these settings, live ones at once.";
    } catch (error) {
        showError("moderation-error", error);
    }
}

// --- the form ---------------------------------------------------------------------------

function buildRule() {
    const preset = document.querySelector("input[name=preset]:checked").value;
    if (preset === "once") return null;
    if (preset === "weekly") {
        const days = DAYS.filter((d) => $(`day-${d}`).checked);
        return days.length ? `FREQ=WEEKLY;BYDAY=${days.join(",")}` : "FREQ=WEEKLY";
    }
    return `FREQ=MONTHLY;BYDAY=${$("nth").value}${$("month-day").value}`;
}

function formBody() {
    const zone = $("timezone").value.trim();
    const body = {
        title: $("title").value,
        description: $("description").value,
        timezone: zone,
        duration_minutes: Number($("duration").value),
        rrule: buildRule(),
        ends_on: $("ends-on").value || null,
        capacity: $("capacity").value ? Number($("capacity").value) : null,
        public: $("public").checked,
        attendance_names_visible: $("names").checked,
    };
    try {
        body.starts_at = zonedToIso($("first-date").value, $("start-time").value, zone);
    } catch {
        throw new ApiError(422, { message: "Choose a first date, a time and a valid time zone.", field: "starts_at" });
    }
    return body;
}

function showFormError(error) {
    const box = $("form-error");
    box.textContent = error ? error.message : "";
    box.hidden = !error;
}

async function preview() {
    showFormError(null);
    const list = $("preview-list");
    list.replaceChildren();
    try {
        const body = formBody();
        const { starts } = await api("POST", "/recurrence/preview", {
            starts_at: body.starts_at, timezone: body.timezone, duration_minutes: body.duration_minutes,
            rrule: body.rrule, ends_on: body.ends_on, count: 6,
        });
        for (const start of starts) {
            const li = document.createElement("li");
            li.textContent = formatIn(start, body.timezone, dateTimeOptions);
            list.append(li);
        }
        $("preview-title").hidden = false;
    } catch (error) {
        showFormError(error);
    }
}

async function save(event) {
    event.preventDefault();
    showFormError(null);
    try {
        const body = formBody();
        const id = $("series-id").value;
        if (id) await api("PATCH", `/series/${encodeURIComponent(id)}`, body);
        else {
            const created = await api("POST", "/series", body);
            for (const link of created.host_links) if (link.url) freshLinks.set(link.id, link.url);
        }
        resetForm();
        await refresh();
    } catch (error) {
        showFormError(error);
    }
}

function startEdit(s) {
    $("form-title").textContent = `Edit “${s.title}”`;
    $("series-id").value = s.id;
    $("title").value = s.title;
    $("description").value = s.description;
    $("timezone").value = s.timezone;
    const local = new Intl.DateTimeFormat("en-CA", {
        timeZone: s.timezone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    }).formatToParts(new Date(s.starts_at));
    const get = (type) => local.find((p) => p.type === type).value;
    $("first-date").value = `${get("year")}-${get("month")}-${get("day")}`;
    $("start-time").value = `${get("hour")}:${get("minute")}`;
    $("duration").value = s.duration_minutes;
    $("capacity").value = s.capacity ?? "";
    $("ends-on").value = s.ends_on ?? "";
    $("public").checked = s.public;
    $("names").checked = s.attendance_names_visible;
    const parts = Object.fromEntries((s.rrule || "").split(";").filter(Boolean).map((p) => p.split("=")));
    const monthly = /^(-?\d)([A-Z]{2})$/.exec(parts.BYDAY || "");
    const preset = !s.rrule ? "once" : parts.FREQ === "MONTHLY" && monthly ? "monthly" : "weekly";
    document.querySelector(`input[name=preset][value=${preset}]`).checked = true;
    for (const d of DAYS) $(`day-${d}`).checked = preset === "weekly" && (parts.BYDAY || "").split(",").includes(d);
    if (monthly) { $("nth").value = monthly[1]; $("month-day").value = monthly[2]; }
    $("cancel-edit").hidden = false;
    editedSeries = s.id;
    $("title").focus();
}

// Back to the Edit button that opened the form (the list may have been drawn anew meanwhile),
// else the list's heading: never the body.
function stopEditing() {
    const id = editedSeries;
    resetForm();
    const entry = [...$("series-list").children].find((li) => li.dataset.seriesId === id);
    const opener = entry?.querySelector("[data-testid=edit]");
    (opener || $("series-title")).focus();
}

function resetForm() {
    $("series-form").reset();
    $("series-id").value = "";
    $("timezone").value = viewerZone;
    $("form-title").textContent = "New series";
    $("cancel-edit").hidden = true;
    editedSeries = null;
    $("preview-list").replaceChildren();
    $("preview-title").hidden = true;
}

async function refresh() {
    await renderSeries();
    await renderWeek();
}

function setUp() {
    $("viewer-zone").textContent = viewerZone;
    const weekdays = $("weekdays");
    DAYS.forEach((code, i) => {
        const label = document.createElement("label");
        const box = document.createElement("input");
        box.type = "checkbox";
        box.id = `day-${code}`;
        box.dataset.testid = `day-${code}`;
        label.append(box, ` ${DAY_NAMES[i].slice(0, 3)}`);
        weekdays.append(label);
        const option = document.createElement("option");
        option.value = code;
        option.textContent = DAY_NAMES[i];
        $("month-day").append(option);
    });
    const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
    $("zones").append(...zones.map((z) => Object.assign(document.createElement("option"), { value: z })));
    $("timezone").value = viewerZone;

    $("token-form").addEventListener("submit", (event) => {
        event.preventDefault();
        const token = $("token").value.trim();
        if (token) signIn(token).catch((error) => signOut(error.message));
    });
    $("sign-out").addEventListener("click", () => signOut(""));
    $("series-form").addEventListener("submit", save);
    $("preview").addEventListener("click", preview);
    $("cancel-edit").addEventListener("click", stopEditing);
    $("occurrence-cancel").addEventListener("click", () => {
        const cancelled = openOccurrence.status === "cancelled";
        changeOccurrence({ cancelled: !cancelled }, cancelled ? "Restored." : "Cancelled.");
    });
    $("move-form").addEventListener("submit", moveOccurrence);
    $("occurrence-close").addEventListener("click", () => { $("occurrence").hidden = true; $("week-title").focus(); });
    $("moderation-form").addEventListener("submit", saveModeration);
    $("moderation-close").addEventListener("click", closeModeration);
    $("week-prev").addEventListener("click", () => { weekStart.setDate(weekStart.getDate() - 7); renderWeek(); });
    $("week-next").addEventListener("click", () => { weekStart.setDate(weekStart.getDate() + 7); renderWeek(); });
    // Live counts change while the page is open.
    setInterval(() => { if (!$("console").hidden) renderWeek().catch(() => {}); }, 30000);

    if (sessionStorage.getItem(TOKEN_KEY)) signIn(sessionStorage.getItem(TOKEN_KEY)).catch(() => signOut(""));
}

setUp();
