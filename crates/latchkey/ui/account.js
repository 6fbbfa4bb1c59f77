// The account page: who you are, your sessions, your password, two-step sign-in (in
// account-mfa.js), your security activity.
import { Latchkey, LatchkeyError } from "/sdk/latchkey.js";
import { setUpTwoStep } from "/ui/account-mfa.js";
import { explain, say } from "/ui/page.js";

const auth = new Latchkey();
// Why we leave when the session ends: the session's own reason, unless the page ended
// it on purpose (to sign in again for a step-up change).
let leaving = null;

function leave(reason) {
  location.replace(`/?ended=${encodeURIComponent(leaving || reason)}`);
}

auth.onSessionEnd(leave);

function when(rfc3339) {
  const date = new Date(rfc3339);
  return Number.isNaN(date.getTime()) ? rfc3339 : date.toLocaleString();
}

function item(parts) {
  const li = document.createElement("li");
  for (const [tag, text, className] of parts) {
    const node = document.createElement(tag);
    node.textContent = text;
    if (className) node.className = className;
    li.append(node);
  }
  return li;
}

async function json(path, init) {
  const response = await auth.fetch(path, init);
  if (response.status === 204) return null;
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new LatchkeyError(body.code || "request_failed", body.error || "request failed", response.status);
  }
  return body;
}

async function showSessions() {
  const { sessions } = await json("/auth/sessions");
  const list = document.getElementById("sessions");
  list.replaceChildren();
  for (const session of sessions) {
    const li = item([
      ["strong", session.device || "Unknown device"],
      ["span", session.current ? "This browser" : "", "badge"],
      ["span", `Address: ${session.ip || "unknown"}`, "meta"],
      ["span", `Last used: ${when(session.last_used_at)}`, "meta"],
      ["span", `Signed in: ${when(session.created_at)}`, "meta"],
    ]);
    li.dataset.sessionId = session.id;
    if (session.current) li.dataset.current = "true";
    const revoke = document.createElement("button");
    revoke.type = "button";
    revoke.className = "secondary revoke";
    revoke.textContent = session.current ? "Sign out" : "Sign out this device";
    revoke.setAttribute("aria-label", `${revoke.textContent}: ${session.device || "unknown device"}`);
    revoke.addEventListener("click", async () => {
      if (session.current) return auth.logout();
      revoke.disabled = true;
      try {
        await json(`/auth/sessions/${encodeURIComponent(session.id)}`, { method: "DELETE" });
        say("That device is signed out.");
        await showSessions();
      } catch (error) {
        say(explain(error), "error");
        revoke.disabled = false;
      }
    });
    li.append(revoke);
    list.append(li);
  }
}

const EVENT_WORDS = {
  login_succeeded: "Signed in",
  login_failed: "Failed sign-in attempt",
  new_device: "Signed in from a new device",
  logout: "Signed out",
  logout_all: "Signed out everywhere",
  password_changed: "Password changed",
  session_revoked: "A session was signed out",
  refresh_token_reused: "A stolen sign-in was blocked",
  registered: "Account created",
  user_registered: "Account created",
  refresh_reuse_detected: "A stolen sign-in was blocked",
  mfa_enrolled: "Two-step sign-in set up, waiting for a code",
  mfa_confirmed: "Two-step sign-in turned on",
  recovery_codes_regenerated: "New recovery codes made",
  login_ceiling_reached: "Many failed sign-in attempts",
  roles_changed: "Your roles were changed",
  mfa_disabled: "Two-step sign-in turned off",
  mfa_reset: "Two-step sign-in reset by an administrator",
  recovery_code_used: "A recovery code was used",
  mfa_failed: "A wrong sign-in code was entered",
  registration_attempted: "Someone tried to create an account with your address",
};

async function showEvents() {
  const { events } = await json("/auth/events?limit=20");
  const list = document.getElementById("events");
  list.replaceChildren();
  if (events.length === 0) list.append(item([["span", "Nothing yet."]]));
  for (const event of events) {
    const words = EVENT_WORDS[event.kind] || event.kind.replace(/_/g, " ");
    const where = [event.device, event.client_ip].filter(Boolean).join(", ");
    list.append(item([
      ["strong", words],
      ["span", when(event.at), "meta"],
      ["span", where, "meta"],
    ]));
  }
}

const syncTwoStep = setUpTwoStep({
  json,
  item,
  refresh: showEvents,
  signInAgain: () => {
    leaving = "reauth";
    return auth.logout();
  },
});

async function start() {
  const session = await auth.restore();
  if (!session) return leave("signed_out");
  document.getElementById("user-id").textContent = auth.user.sub;
  document.getElementById("user-roles").textContent = (auth.user.roles || []).join(", ");
  await Promise.all([showSessions(), showEvents(), syncTwoStep()]);
  document.body.dataset.ready = "true";
}

document.getElementById("signout").addEventListener("click", () => auth.logout());

document.getElementById("signout-all").addEventListener("click", async () => {
  try {
    await json("/auth/logout-all", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ keep_current: true }),
    });
    say("All your other sessions are signed out.");
    await showSessions();
  } catch (error) {
    say(explain(error), "error");
  }
});

document.getElementById("password-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const current = document.getElementById("current-password");
  const next = document.getElementById("new-password");
  try {
    await json("/auth/password", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ current_password: current.value, new_password: next.value }),
    });
    current.value = "";
    next.value = "";
    say("Your password is changed.");
    await Promise.all([showSessions(), showEvents()]);
  } catch (error) {
    const wrong = error.code === "invalid_credentials";
    say(wrong ? "Your current password is not right." : explain(error), "error");
  }
});

// Notice a session ended elsewhere (revoked from another device) when the page comes back.
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && auth.user) showSessions().catch(() => {});
});

start().catch((error) => say(explain(error), "error"));
