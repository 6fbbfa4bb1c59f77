// The account page's two-step sign-in section: turn it on (QR code, then the recovery
// codes), make new recovery codes, turn it off. The last two are step-up changes: the
// server wants a code and a recent sign-in (401 reauth_required otherwise).
import { explain, say } from "/ui/page.js";

const $ = (id) => document.getElementById(id);

const MFA_ON = "Two-step sign-in is on: sign-in asks for a code from your app.";
const MFA_OFF = "Ask for a code from an authenticator app at sign-in, as well as your password.";

const WORDS = {
  mfa_code_missing: "Enter a code from your authenticator app, or one of your recovery codes.",
  mfa_code_invalid: "That code didn't work. Check your app, or use an unused recovery code.",
};

const codesLeft = (n) =>
  n === 0
    ? "No recovery codes are left: make new ones below."
    : `${n} unused recovery ${n === 1 ? "code" : "codes"} left.`;

/**
 * Wire the section up. `json(path, init)` calls the API with the session's token and
 * throws LatchkeyError; `item(parts)` makes a list item; `refresh()` reloads the
 * security activity; `signInAgain()` ends this session to sign in afresh. Returns
 * `sync()`, which shows the state the server reports (GET /auth/mfa).
 */
export function setUpTwoStep({ json, item, refresh, signInAgain }) {
  const show = (on, left) => {
    $("mfa-state").textContent = on ? `${MFA_ON} ${codesLeft(left)}` : MFA_OFF;
    $("mfa-start").hidden = on;
    $("mfa-manage").hidden = !on;
    if (!on) $("mfa-codes").hidden = true;
    $("mfa-section").dataset.mfa = on ? "on" : "off";
  };

  const sync = async () => {
    const status = await json("/auth/mfa");
    show(status.enabled, status.recovery_codes_left);
  };

  const showCodes = (codes) => {
    $("mfa-recovery").replaceChildren(...codes.map((text) => item([["code", text]])));
    $("mfa-codes").hidden = false;
    $("mfa-codes").focus();
  };

  const fail = (error) => {
    if (error.code === "mfa_not_enabled") {
      show(false);
      return say("Two-step sign-in is already off.");
    }
    if (error.code === "mfa_already_enabled") {
      say("Two-step sign-in is already on.");
      return sync().catch(() => {});
    }
    $("mfa-reauth").hidden = error.code !== "reauth_required";
    say(WORDS[error.code] || explain(error), "error");
  };

  const post = (path, method, body) =>
    json(path, { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

  $("mfa-start").addEventListener("click", async () => {
    try {
      const enrollment = await json("/auth/mfa/totp/enroll", { method: "POST" });
      $("mfa-qr").src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(enrollment.qr_svg)}`;
      $("mfa-secret").textContent = enrollment.secret;
      $("mfa-start").hidden = true;
      $("mfa-enrol").hidden = false;
      $("mfa-code").focus();
    } catch (error) {
      fail(error);
    }
  });

  $("mfa-confirm-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const { recovery_codes: codes } = await post("/auth/mfa/totp/confirm", "POST", {
        code: $("mfa-code").value.trim(),
      });
      $("mfa-enrol").hidden = true;
      // The codes first: they are shown this once, whatever happens next.
      showCodes(codes);
      say("Two-step sign-in is on.");
      await Promise.all([sync(), refresh()]);
    } catch (error) {
      fail(error);
    }
  });

  // A step-up form: the code field's value goes as `code` (six digits or a recovery code).
  const stepUp = (formId, fieldId, act) => {
    $(formId).addEventListener("submit", async (event) => {
      event.preventDefault();
      const field = $(fieldId);
      const code = field.value.trim();
      if (!code) {
        field.focus();
        return say(WORDS.mfa_code_missing, "error");
      }
      const button = event.currentTarget.querySelector("button");
      button.disabled = true;
      try {
        await act(code);
        field.value = "";
        $("mfa-reauth").hidden = true;
        await Promise.all([sync(), refresh()]);
      } catch (error) {
        fail(error);
      } finally {
        button.disabled = false;
      }
    });
  };

  stepUp("mfa-new-codes-form", "mfa-new-codes-code", async (code) => {
    const { recovery_codes: codes } = await post("/auth/mfa/recovery-codes", "POST", { code });
    showCodes(codes);
    say("New recovery codes are below. Your old codes no longer work.");
  });

  stepUp("mfa-off-form", "mfa-off-code", async (code) => {
    await post("/auth/mfa/totp", "DELETE", { code });
    say("Two-step sign-in is off. Sign-in asks only for your password now.");
  });

  $("mfa-reauth-button").addEventListener("click", signInAgain);

  return sync;
}
