// The sign-in and sign-up page.
import { Latchkey } from "/sdk/latchkey.js";
import { ENDED, explain, say } from "/ui/page.js";

const auth = new Latchkey();
const sections = ["signin", "signup", "mfa"].map((id) => document.getElementById(id));

function show(id) {
  for (const section of sections) section.hidden = section.id !== id;
  const first = document.querySelector(`#${id} input`);
  if (first) first.focus();
}

function route() {
  show(location.hash === "#signup" ? "signup" : "signin");
}

function busy(form, on) {
  for (const control of form.elements) control.disabled = on;
}

async function signedIn() {
  location.assign("/account");
}

const ended = new URLSearchParams(location.search).get("ended");
if (ended && ENDED[ended]) say(ENDED[ended]);

window.addEventListener("hashchange", route);
route();

document.getElementById("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  busy(form, true);
  say("Signing in…");
  try {
    const result = await auth.login(form.email.value.trim(), form.password.value);
    if (result.mfaRequired) {
      say("");
      show("mfa");
      document.getElementById("mfa-form").onsubmit = async (mfaEvent) => {
        mfaEvent.preventDefault();
        const mfaForm = mfaEvent.currentTarget;
        busy(mfaForm, true);
        try {
          await result.complete(mfaForm.code.value.replace(/\s+/g, ""));
          await signedIn();
        } catch (error) {
          say(explain(error), "error");
          busy(mfaForm, false);
        }
      };
      return;
    }
    await signedIn();
  } catch (error) {
    say(explain(error), "error");
  } finally {
    busy(form, false);
  }
});

document.getElementById("signup-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const email = form.email.value.trim();
  const password = form.password.value;
  busy(form, true);
  say("Creating your account…");
  try {
    await auth.register(email, password);
    await auth.login(email, password);
    await signedIn();
  } catch (error) {
    say(explain(error), "error");
    busy(form, false);
  }
});

// Already signed in (a refresh cookie is there): go straight to the account page.
auth.restore().then((session) => {
  if (session && !ended) signedIn();
}, () => {});
