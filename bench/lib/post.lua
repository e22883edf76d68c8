-- wrk script: every request is a POST, which nginx never retries once a
-- backend got it, so a backend dying under traffic counts as a failure.
wrk.method = "POST"
wrk.body = "order=42"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
