// Hearth admin console: schedule series through /api/v1 with a bearer token.
// The token lives in sessionStorage only (gone when the tab closes) and is sent only to
// this server. Everything shown comes from the API; nothing here decides a schedule.

const API = "/api/v1";
const TOKEN_KEY = "hearth-admin-token";
const DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];
const DAY_NAMES = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const viewerZone = Intl.DateTimeFormat().resolvedOptions().timeZone;

const $ = (id) => document.getElementById(id);
let weekStart = startOfWeek(new Date());
let seriesById = new Map();

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
            let text = `${formatIn(o.starts_at, viewerZone, { hour: "2-digit", minute: "2-digit" })} ${o.title}`;
            if (o.status === "cancelled") text += " (cancelled)";
            else if (o.status === "live" || o.status === "open") text += ` · ${o.status}, ${o.present} in it`;
            if (o.moved && o.status !== "cancelled") text += " (moved)";
            item.textContent = text;
            list.append(item);
        }
        li.append(h, list);
        week.append(li);
    }
}

// --- series -----------------------------------------------------------------------------

function copyButton(label, url) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `Copy ${label}`;
    button.addEventListener("click", async () => {
        try {
            await navigator.clipboard.writeText(url);
            button.textContent = "Copied";
        } catch {
            button.textContent = "Select the link and copy it";
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
        for (const host of s.host_links) {
            // Host links are stored hashed: a URL exists only in the answer that made or rotated it.
            if (host.url) links.append(linkLine(`Host link “${host.name}”`, host.url));
            else {
                const li = document.createElement("li");
                li.textContent = `Host link “${host.name}”: shown once, when made or rotated.`;
                links.append(li);
            }
        }
        const edit = document.createElement("button");
        edit.type = "button";
        edit.textContent = "Edit";
        edit.addEventListener("click", () => startEdit(s));
        const remove = document.createElement("button");
        remove.type = "button";
        remove.textContent = "Delete";
        remove.addEventListener("click", async () => {
            if (!confirm(`Delete “${s.title}” and all its occurrences?`)) return;
            await api("DELETE", `/series/${encodeURIComponent(s.id)}`);
            await refresh();
        });
        const nextTitle = document.createElement("p");
        nextTitle.textContent = s.next_starts.length ? "Next dates:" : "No dates ahead.";
        li.append(title, when, nextTitle, next, links, edit, " ", remove);
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
        else await api("POST", "/series", body);
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
    $("title").focus();
}

function resetForm() {
    $("series-form").reset();
    $("series-id").value = "";
    $("timezone").value = viewerZone;
    $("form-title").textContent = "New series";
    $("cancel-edit").hidden = true;
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
    $("cancel-edit").addEventListener("click", resetForm);
    $("week-prev").addEventListener("click", () => { weekStart.setDate(weekStart.getDate() - 7); renderWeek(); });
    $("week-next").addEventListener("click", () => { weekStart.setDate(weekStart.getDate() + 7); renderWeek(); });
    // Live counts change while the page is open.
    setInterval(() => { if (!$("console").hidden) renderWeek().catch(() => {}); }, 30000);

    if (sessionStorage.getItem(TOKEN_KEY)) signIn(sessionStorage.getItem(TOKEN_KEY)).catch(() => signOut(""));
}

setUp();
