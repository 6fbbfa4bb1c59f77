// latchkey.js: the browser client of a Latchkey server. Dependency-free ES module.
//
// The access token lives in this module's memory only. The refresh token lives in an
// HttpOnly cookie that scripts cannot read; refreshing sends it with
// `credentials: "include"` and the X-Latchkey-CSRF header the server requires.
// One refresh is in flight at a time in a tab (a shared promise) and across the tabs
// of an origin (the Web Locks API); BroadcastChannel hands the new access token and
// the end of the session to the other tabs.

const CSRF_HEADER = "X-Latchkey-CSRF";

/** An error from the Latchkey server (or the network), with the server's `code`. */
export class LatchkeyError extends Error {
  /**
   * @param {string} code the server's stable error code, or `network_error`
   * @param {string} message a readable message
   * @param {number} status the HTTP status, 0 for a network failure
   */
  constructor(code, message, status) {
    super(message);
    this.name = "LatchkeyError";
    this.code = code;
    this.status = status;
  }
}

function decodeClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = new TextDecoder().decode(
      Uint8Array.from(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")), (c) =>
        c.charCodeAt(0),
      ),
    );
    return JSON.parse(json);
  } catch {
    return null;
  }
}

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON
  }
  const code = (body && body.code) || `http_${response.status}`;
  const message = (body && body.error) || response.statusText || "request failed";
  return new LatchkeyError(code, message, response.status);
}

// Codes that mean the session is over for good: log in again.
const SESSION_OVER = new Set([
  "refresh_token_missing",
  "refresh_token_invalid",
  "refresh_token_expired",
  "refresh_token_reused",
  "session_revoked",
  "token_revoked",
]);

/** A session with a Latchkey server. */
export class Latchkey {
  #base;
  #token = null;
  #claims = null;
  #inflight = null;
  #generation = 0;
  #listeners = new Set();
  #channel = null;
  #lockName;

  /**
   * @param {{baseUrl?: string}} [options] the server's URL; default: this module's origin
   */
  constructor(options = {}) {
    this.#base = String(options.baseUrl || new URL(import.meta.url).origin).replace(/\/+$/, "");
    this.#lockName = `latchkey-refresh ${this.#base}`;
    if (typeof BroadcastChannel === "function") {
      this.#channel = new BroadcastChannel(`latchkey ${this.#base}`);
      this.#channel.onmessage = (event) => this.#fromOtherTab(event.data);
    }
  }

  /** The current access token's claims, or `null` when signed out. */
  get user() {
    return this.#claims;
  }

  /**
   * Call `callback(reason)` when the session ends: `logout`, `revoked`, `reused`,
   * `expired` or `other_tab`. Returns a function that removes the callback.
   */
  onSessionEnd(callback) {
    this.#listeners.add(callback);
    return () => this.#listeners.delete(callback);
  }

  /** On page load: a session from the refresh cookie, or `null` when there is none. */
  async restore() {
    try {
      await this.refresh();
      return { user: this.#claims };
    } catch (error) {
      if (error instanceof LatchkeyError && error.status === 401) return null;
      throw error;
    }
  }

  /** Create an account. Resolves to the new user (`{id, email, roles}`); does not sign in. */
  async register(email, password) {
    const response = await this.#call("/auth/register", { email, password });
    if (!response.ok) throw await errorOf(response);
    return response.json();
  }

  /**
   * Sign in. Resolves to `{user}`, or to `{mfaRequired: true, complete(code)}` when the
   * account has a second factor: `complete` sends the code and resolves to `{user}`.
   */
  async login(email, password) {
    const response = await this.#call("/auth/login", { email, password });
    if (!response.ok) throw await errorOf(response);
    const body = await response.json();
    if (body.mfa_required) {
      const mfaToken = body.mfa_token;
      return {
        mfaRequired: true,
        complete: async (code) => {
          const answer = await this.#call("/auth/login/mfa", { mfa_token: mfaToken, code });
          if (!answer.ok) throw await errorOf(answer);
          this.#signedIn((await answer.json()).access_token, true);
          return { user: this.#claims };
        },
      };
    }
    this.#signedIn(body.access_token, true);
    return { user: this.#claims };
  }

  /**
   * `fetch` with the access token as a bearer. On 401 `token_expired` it refreshes
   * once and retries once. Resolves to the `Response`, whatever its status.
   */
  async fetch(url, init = {}) {
    if (!this.#token) await this.refresh();
    let sent = this.#token;
    let response = await fetch(url, this.#withBearer(init, sent));
    if (response.status !== 401) return response;
    const error = await errorOf(response.clone());
    if (error.code === "token_expired") {
      // Another caller may have refreshed while this request was out: use its token.
      if (this.#token === sent) await this.refresh();
      sent = this.#token;
      response = await fetch(url, this.#withBearer(init, sent));
    } else if (SESSION_OVER.has(error.code)) {
      this.#ended("revoked", true);
    }
    return response;
  }

  /** Get a new access token with the refresh cookie. One in flight, however many callers. */
  refresh() {
    if (!this.#inflight) {
      this.#inflight = this.#refreshOnce().finally(() => {
        this.#inflight = null;
      });
    }
    return this.#inflight;
  }

  /** Sign out this session: the server revokes it and removes the cookie. */
  async logout() {
    const headers = { [CSRF_HEADER]: "1" };
    if (this.#token) headers.Authorization = `Bearer ${this.#token}`;
    const response = await fetch(`${this.#base}/auth/logout`, {
      method: "POST",
      credentials: "include",
      headers,
    });
    this.#ended("logout", true);
    if (!response.ok && response.status !== 401) throw await errorOf(response);
  }

  async #refreshOnce() {
    const started = this.#generation;
    const run = async () => {
      // Another tab refreshed while this one waited for the lock: take its token.
      if (this.#generation !== started && this.#token) return;
      let response;
      try {
        response = await fetch(`${this.#base}/auth/refresh`, {
          method: "POST",
          credentials: "include",
          headers: { [CSRF_HEADER]: "1" },
        });
      } catch (cause) {
        throw new LatchkeyError("network_error", String(cause), 0);
      }
      if (!response.ok) {
        const error = await errorOf(response);
        if (SESSION_OVER.has(error.code) && error.code !== "refresh_token_missing") {
          const reason = error.code === "refresh_token_reused" ? "reused" : "revoked";
          this.#ended(error.code === "refresh_token_expired" ? "expired" : reason, true);
        } else if (error.code === "refresh_token_missing") {
          this.#clear();
        }
        throw error;
      }
      this.#signedIn((await response.json()).access_token, true);
    };
    if (globalThis.navigator && navigator.locks && navigator.locks.request) {
      return navigator.locks.request(this.#lockName, run);
    }
    return run();
  }

  #withBearer(init, token) {
    const headers = new Headers(init.headers || {});
    if (token) headers.set("Authorization", `Bearer ${token}`);
    return { ...init, headers };
  }

  #call(path, body) {
    return fetch(`${this.#base}${path}`, {
      method: "POST",
      credentials: "include",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    }).catch((cause) => {
      throw new LatchkeyError("network_error", String(cause), 0);
    });
  }

  #signedIn(token, tell) {
    this.#token = token;
    this.#claims = decodeClaims(token);
    this.#generation += 1;
    if (tell && this.#channel) this.#channel.postMessage({ type: "token", token });
  }

  #clear() {
    this.#token = null;
    this.#claims = null;
    this.#generation += 1;
  }

  #ended(reason, tell) {
    const wasSignedIn = this.#token !== null;
    this.#clear();
    if (tell && this.#channel) this.#channel.postMessage({ type: "end", reason });
    if (wasSignedIn || !tell) {
      for (const listener of this.#listeners) {
        try {
          listener(reason);
        } catch (error) {
          console.error(error);
        }
      }
    }
  }

  #fromOtherTab(message) {
    if (!message || typeof message !== "object") return;
    if (message.type === "token" && typeof message.token === "string") {
      this.#signedIn(message.token, false);
    } else if (message.type === "end" && this.#token !== null) {
      this.#ended(message.reason === "logout" ? "other_tab" : message.reason, false);
    }
  }
}
