// Helpers shared by the pages.
import { LatchkeyError } from "/sdk/latchkey.js";

const MESSAGES = {
  credentials_invalid: "That email and password don't match an account.",
  invalid_credentials: "That email and password don't match an account.",
  email_taken: "An account with that email already exists. Try signing in.",
  email_exists: "An account with that email already exists. Try signing in.",
  password_too_weak: "Choose a stronger password: longer, and harder to guess.",
  password_too_short: "Your password needs at least 8 characters.",
  rate_limited: "Too many attempts. Wait a minute and try again.",
  login_throttled: "Too many attempts. Wait a minute and try again.",
  account_disabled: "This account has been turned off. Contact the people who run this service.",
  mfa_code_invalid: "That code didn't work. Check your app and try again.",
  network_error: "Can't reach the server. Check your connection and try again.",
  reauth_required: "For your safety, this change needs a recent sign-in. Sign in again, then try once more.",
};

/** A readable sentence for an error. */
export function explain(error) {
  if (error instanceof LatchkeyError) {
    return MESSAGES[error.code] || `${error.message.charAt(0).toUpperCase()}${error.message.slice(1)}.`;
  }
  return "Something went wrong. Try again.";
}

/** Show `text` in the page's status line; `kind` is "error" or "ok". */
export function say(text, kind = "ok") {
  const status = document.getElementById("status");
  status.textContent = text;
  status.dataset.kind = kind;
}

/** Why a session ended, in words. */
export const ENDED = {
  logout: "You signed out.",
  other_tab: "You signed out in another tab.",
  revoked: "You were signed out. Sign in again to continue.",
  reused: "You were signed out to protect your account. Sign in again.",
  expired: "Your session expired. Sign in again.",
  signed_out: "Sign in to continue.",
  reauth: "Sign in again to confirm it's you. Then you're back on your account page.",
};
