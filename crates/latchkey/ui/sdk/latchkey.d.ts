// Types for latchkey.js, the browser client of a Latchkey server.

/** The claims of the current access token. */
export interface LatchkeyClaims {
  /** The user id. */
  sub: string;
  /** The session id. */
  sid: string;
  /** The user's roles. */
  roles: string[];
  iss: string;
  aud: string[];
  /** Issued at, seconds since the epoch. */
  iat: number;
  /** Expires at, seconds since the epoch. */
  exp: number;
  jti: string;
  [claim: string]: unknown;
}

/** Why a session ended. */
export type SessionEndReason = "logout" | "revoked" | "reused" | "expired" | "other_tab";

/** The answer of `login`: signed in, or a second factor is needed. */
export type LoginResult =
  | { user: LatchkeyClaims | null; mfaRequired?: undefined }
  | { mfaRequired: true; complete(code: string): Promise<{ user: LatchkeyClaims | null }> };

/** An error from the server (its stable `code`) or the network (`network_error`). */
export declare class LatchkeyError extends Error {
  readonly name: "LatchkeyError";
  readonly code: string;
  /** The HTTP status; 0 for a network failure. */
  readonly status: number;
  constructor(code: string, message: string, status: number);
}

/** A session with a Latchkey server. */
export declare class Latchkey {
  /** `baseUrl` defaults to the origin this module was loaded from. */
  constructor(options?: { baseUrl?: string });
  /** The current access token's claims, or null when signed out. */
  readonly user: LatchkeyClaims | null;
  /** On page load: a session from the refresh cookie, or null. */
  restore(): Promise<{ user: LatchkeyClaims | null } | null>;
  /** Create an account (does not sign in). */
  register(email: string, password: string): Promise<{ id: string; email: string; roles: string[] }>;
  /** Sign in; may ask for a second factor. */
  login(email: string, password: string): Promise<LoginResult>;
  /** `fetch` with the bearer; on 401 token_expired refreshes once and retries once. */
  fetch(url: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /** A new access token from the refresh cookie; one in flight for all callers and tabs. */
  refresh(): Promise<void>;
  /** Sign out this session. */
  logout(): Promise<void>;
  /** Called when the session ends; returns a function that removes the callback. */
  onSessionEnd(callback: (reason: SessionEndReason) => void): () => void;
}
