// The email-confirmation page: the link's token confirms the address.
import { say } from "/ui/page.js";

const token = new URLSearchParams(location.search).get("token");

async function confirm() {
  if (!token) {
    say("This page needs the link from your email.", "error");
    return;
  }
  const response = await fetch("/auth/verify-email", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token }),
  });
  if (response.ok) {
    say("Your email is confirmed. Thank you.");
  } else {
    say("This link has expired or was used already. Sign in and ask for a new one.", "error");
  }
}

confirm();
