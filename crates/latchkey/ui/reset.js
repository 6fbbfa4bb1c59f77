// The password-reset page: ask for a link, or (with ?token= from the link) choose a new
// password. The server answers the request the same way whether or not the address
// has an account.
import { explain, say } from "/ui/page.js";

const token = new URLSearchParams(location.search).get("token");
const request = document.getElementById("request");
const choose = document.getElementById("choose");

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (response.ok) return;
  const answer = await response.json().catch(() => ({}));
  const error = new Error(answer.error || "request failed");
  error.code = answer.code;
  throw error;
}

const WORDS = {
  reset_token_invalid: "This link has expired or was used already. Ask for a new one.",
  mfa_code_missing: "Your account has two-step sign-in: enter a code from your app, or a recovery code.",
  mfa_code_invalid: "That code didn't work. Check your app and try again.",
};

function words(error) {
  return WORDS[error.code] || explain(Object.assign(error, { message: error.message }));
}

if (token) {
  request.hidden = true;
  choose.hidden = false;
  document.getElementById("new-password").focus();
}

document.getElementById("request-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  try {
    await post("/auth/password-reset", { email: form.email.value.trim() });
    say("If that email belongs to an account, a link is on its way. Check your inbox.");
  } catch (error) {
    say(words(error), "error");
  }
});

document.getElementById("choose-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const body = { token, new_password: form.password.value };
  if (form.code.value.trim()) body.mfa_code = form.code.value.trim();
  try {
    await post("/auth/password-reset/confirm", body);
    choose.hidden = true;
    say("Your password is changed. Sign in with it now.");
  } catch (error) {
    say(words(error), "error");
  }
});
