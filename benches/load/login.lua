-- wrk script: the ~1 KB "login POST" of the criterion benchmarks (waf_benches::login_post_1k in
-- benches/src/lib.rs): a clean sign-in to a B2C SelfAsserted endpoint, an
-- application/x-www-form-urlencoded body of exactly 1,000 bytes, with the headers Chrome sends
-- on that XHR. What belongs to one sign-in (tx, X-CSRF-TOKEN, pageViewId, correlationId, the
-- device fingerprint, the session cookies) is drawn afresh for every request, with the shapes
-- and lengths lib.rs's generator gives them; the rest is the same in every request.
-- wrk sets Content-Length itself from the body (1000 bytes).

wrk.method = "POST"
-- random.lua sits beside this script.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local random = require("random")

wrk.path = "/contoso.onmicrosoft.com/B2C_1A_signup_signin/SelfAsserted"
  .. "?tx=StateProperties=eyJUSUQiOiI${b64_93}"
  .. "&p=B2C_1A_signup_signin"

wrk.body = "request_type=RESPONSE&signInName=zoe.martin%40contoso.com"
  .. "&password=Blue%2BHarbor-2024%21&rememberMe=true&extension_agreedToTerms=true"
  .. "&ui_locales=en-US&clientTimezone=Europe%2FParis&screenWidth=1920&screenHeight=1080"
  .. "&colorDepth=24&browserLanguage=en-US&javaEnabled=false&cookiesEnabled=true"
  .. "&pageViewId=${uuid}"
  .. "&correlationId=${uuid}&diags="
  -- B2C's page telemetry: a percent-encoded JSON summary of the page timings.
  .. "%7B%22pageId%22%3A%22CombinedSigninAndSignup%22%2C%22trace%22%3A%5B%7B%22ac%22%3A"
  .. "%22T005%22%2C%22acST%22%3A1716198067%2C%22acD%22%3A7%7D%2C%7B%22ac%22%3A%22T021+-+"
  .. "URL%3Ahttps%3A%2F%2Fcontoso.b2clogin.com%2Fstatic%2Funified.html%22%2C%22acST%22%3A"
  .. "1716198067%2C%22acD%22%3A112%7D%2C%7B%22ac%22%3A%22T019%22%2C%22acST%22%3A1716198068"
  .. "%2C%22acD%22%3A9%7D%5D%7D"
  -- Padding to 1,000 bytes: the device fingerprint the page computes.
  .. "&deviceFingerprint=${b64_231}"
assert(#random.fill(wrk.body) == 1000, "login body must be 1000 bytes, is " .. #random.fill(wrk.body))

local h = wrk.headers
h["Host"] = "login.contoso.com"
h["Connection"] = "keep-alive"
h["sec-ch-ua"] = [["Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"]]
h["X-CSRF-TOKEN"] = "${b64_84}=="
h["sec-ch-ua-mobile"] = "?0"
h["User-Agent"] = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
  .. "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
h["Content-Type"] = "application/x-www-form-urlencoded; charset=UTF-8"
h["Accept"] = "application/json, text/javascript, */*; q=0.01"
h["X-Requested-With"] = "XMLHttpRequest"
h["sec-ch-ua-platform"] = [["Windows"]]
h["Origin"] = "https://login.contoso.com"
h["Sec-Fetch-Site"] = "same-origin"
h["Sec-Fetch-Mode"] = "cors"
h["Sec-Fetch-Dest"] = "empty"
h["Referer"] = "https://login.contoso.com/contoso.onmicrosoft.com/B2C_1A_signup_signin/oauth2/v2.0/authorize"
  .. "?client_id=8f3c2a61-4d7e-4b5a-9c1e-2f6d8b7a0e93&redirect_uri=https%3A%2F%2Fapp.contoso.com%2Fsignin-oidc"
  .. "&response_type=code&scope=openid%20profile%20offline_access&response_mode=form_post"
  .. "&state=WEtCTyEKMAY-7WouTvUFfJQkjbwsL63j0Ohvugif&nonce=2SqyvEoTFZLsJgW6EU7lFyQ10QVMboQV"
h["Accept-Encoding"] = "gzip, deflate, br, zstd"
h["Accept-Language"] = "en-US,en;q=0.9,fr-FR;q=0.8,fr;q=0.7"
h["Cookie"] = "x-ms-cpim-sso:contoso.onmicrosoft.com_0=m1.${b64_48}; "
  .. "x-ms-cpim-csrf=${b64_64}; "
  .. "x-ms-cpim-trans=eyJUX0RJQyI6W3siSSI6IjAG${b64_59}; "
  .. "x-ms-cpim-cache|otwu8mpxxvadwajasfvspp_0=m1.${b64_72}; "
  .. "x-ms-cpim-dc=cpim-weu; ai_user=Wd3kP|2024-05-20T09:41:07.118Z"

-- A fresh sign-in for every request.
local path_template, body_template = wrk.path, wrk.body
local csrf_template, cookie_template = h["X-CSRF-TOKEN"], h["Cookie"]
function request()
  h["X-CSRF-TOKEN"] = random.fill(csrf_template)
  h["Cookie"] = random.fill(cookie_template)
  return wrk.format(nil, random.fill(path_template), h, random.fill(body_template))
end
