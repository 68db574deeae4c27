-- wrk script: the "authorize GET" of the criterion benchmarks (waf_benches::authorize_get in
-- benches/src/lib.rs): a clean OAuth 2.0 PKCE authorization request to a B2C policy, with the
-- headers Chrome sends on that navigation. What belongs to the app (client_id, scope,
-- redirect_uri, MSAL version...) is the same in every request; what belongs to one sign-in
-- (client-request-id, code_challenge, nonce, state, the SSO cookie) is drawn afresh for every
-- request, with the shapes and lengths lib.rs's generator gives them, as in real traffic:
-- a WAF that remembers recurring values must not be flattered by a load that never changes.
-- wrk adds no header of its own here: Host is set below, and a GET has no Content-Length.

wrk.method = "GET"
-- random.lua sits beside this script.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local random = require("random")

wrk.path = "/contoso.onmicrosoft.com/B2C_1A_signup_signin/oauth2/v2.0/authorize"
  .. "?client_id=8f3c2a61-4d7e-4b5a-9c1e-2f6d8b7a0e93"
  .. "&scope=openid%20profile%20offline_access%20https%3A%2F%2Fcontoso.onmicrosoft.com%2Fapi%2Forders.read"
  .. "&redirect_uri=https%3A%2F%2Fapp.contoso.com%2Fauth%2Fcallback"
  .. "&client-request-id=${uuid}&response_mode=fragment&response_type=code"
  .. "&x-client-SKU=msal.js.browser&x-client-VER=3.13.0&client_info=1"
  .. "&code_challenge=${b64_43}&code_challenge_method=S256"
  .. "&nonce=${uuid}"
  .. "&state=eyJpZCI6IjAx${b64_60}"
  .. "%7Cfalse%7Chttps%3A%2F%2Fapp.contoso.com%2Forders"
  .. "&prompt=login&ui_locales=en-US"

-- wrk sends headers in table order (unordered); the proxy groups them by name anyway.
local h = wrk.headers
h["Host"] = "login.contoso.com"
h["Connection"] = "keep-alive"
h["sec-ch-ua"] = [["Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"]]
h["sec-ch-ua-mobile"] = "?0"
h["sec-ch-ua-platform"] = [["Windows"]]
h["Upgrade-Insecure-Requests"] = "1"
h["User-Agent"] = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
  .. "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
h["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
  .. "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
h["Sec-Fetch-Site"] = "cross-site"
h["Sec-Fetch-Mode"] = "navigate"
h["Sec-Fetch-User"] = "?1"
h["Sec-Fetch-Dest"] = "document"
h["Referer"] = "https://app.contoso.com/"
h["Accept-Encoding"] = "gzip, deflate, br, zstd"
h["Accept-Language"] = "en-US,en;q=0.9,fr-FR;q=0.8,fr;q=0.7"
h["Cookie"] = "x-ms-cpim-sso:contoso.onmicrosoft.com_0=m1.${b64_48}; "
  .. "x-ms-cpim-dc=cpim-weu; ai_user=Wd3kP|2024-05-20T09:41:07.118Z"

-- A fresh sign-in for every request.
local path_template, cookie_template = wrk.path, h["Cookie"]
function request()
  h["Cookie"] = random.fill(cookie_template)
  return wrk.format(nil, random.fill(path_template), h)
end
