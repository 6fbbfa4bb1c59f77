// An app on its own origin that signs in through a Latchkey server with latchkey.js.
// The server must list this page's origin in LATCHKEY_ALLOWED_ORIGINS.
const server = new URLSearchParams(location.search).get("server") || "http://127.0.0.1:8080";
const { Latchkey, LatchkeyError } = await import(`${server}/sdk/latchkey.js`);

const auth = new Latchkey({ baseUrl: server });
const $ = (id) => document.getElementById(id);

function show(signedIn) {
  $("signin").hidden = signedIn;
  $("app").hidden = !signedIn;
  $("who").textContent = signedIn ? auth.user.sub : "";
}

auth.onSessionEnd((reason) => {
  $("status").textContent = `Signed out (${reason}).`;
  show(false);
});

$("signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const result = await auth.login($("email").value, $("password").value);
    if (result.mfaRequired) {
      await result.complete(prompt("The code from your authenticator app") || "");
    }
    $("status").textContent = "Signed in.";
    show(true);
  } catch (error) {
    $("status").textContent = error instanceof LatchkeyError ? `${error.code}: ${error.message}` : String(error);
  }
});

$("call").addEventListener("click", async () => {
  // Any API that accepts Latchkey's access tokens; here, the server's own /auth/me.
  const response = await auth.fetch(`${server}/auth/me`);
  $("answer").textContent = JSON.stringify(await response.json(), null, 2);
});

$("signout").addEventListener("click", () => auth.logout());

const session = await auth.restore();
$("status").textContent = session ? "Welcome back." : "Sign in to see your notes.";
show(session !== null);
