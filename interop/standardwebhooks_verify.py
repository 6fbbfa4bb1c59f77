"""Verify Latchkey's webhook deliveries with the Standard Webhooks reference library.

Usage: standardwebhooks_verify.py SECRET < deliveries
Each input line is a JSON object {"headers": {...}, "body": "..."}. Prints
"ok <webhook-id> <type>" per verified delivery; exits 1 at the first that fails
(bad signature, or a timestamp more than five minutes off).
"""

import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main() -> int:
    webhook = Webhook(sys.argv[1])
    for line in sys.stdin:
        if not line.strip():
            continue
        delivery = json.loads(line)
        try:
            payload = webhook.verify(delivery["body"], delivery["headers"])
        except WebhookVerificationError as error:
            print(f"refused {delivery['headers'].get('webhook-id')}: {error}")
            return 1
        print(f"ok {delivery['headers']['webhook-id']} {payload['type']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
