-- wrk script: the ~1 KB "login POST" of the criterion benchmarks (waf_benches::login_post_1k in
-- benches/src/lib.rs): a clean sign-in to a B2C SelfAsserted endpoint, an
-- application/x-www-form-urlencoded body of exactly 1,000 bytes, with the headers Chrome sends
-- on that XHR. The random-looking parts (tx, X-CSRF-TOKEN, Referer state and nonce, cookies,
-- deviceFingerprint) are the values lib.rs's seeded generator produces, copied verbatim.
-- wrk sets Content-Length itself from wrk.body (1000).

wrk.method = "POST"

wrk.path = "/contoso.onmicrosoft.com/B2C_1A_signup_signin/SelfAsserted"
  .. "?tx=StateProperties=eyJUSUQiOiIGsDgZxoyk7RnpsXaY58Vd8cMMctuk0v4Rq_9AECTD__1rGMjfxEPZsJuv6cCvUhKdlfGEsjy3V6FlphSTa1_uqB-1NR7K"
  .. "&p=B2C_1A_signup_signin"

wrk.body = "request_type=RESPONSE&signInName=zoe.martin%40contoso.com"
  .. "&password=Blue%2BHarbor-2024%21&rememberMe=true&extension_agreedToTerms=true"
  .. "&ui_locales=en-US&clientTimezone=Europe%2FParis&screenWidth=1920&screenHeight=1080"
  .. "&colorDepth=24&browserLanguage=en-US&javaEnabled=false&cookiesEnabled=true"
  .. "&pageViewId=3f0c9b1e-8a27-4c5d-b6e1-7d92a4f05c38"
  .. "&correlationId=c1a4e6b2-0f3d-4e8a-9b57-2d6f81c3a9e0&diags="
  -- B2C's page telemetry: a percent-encoded JSON summary of the page timings.
  .. "%7B%22pageId%22%3A%22CombinedSigninAndSignup%22%2C%22trace%22%3A%5B%7B%22ac%22%3A"
  .. "%22T005%22%2C%22acST%22%3A1716198067%2C%22acD%22%3A7%7D%2C%7B%22ac%22%3A%22T021+-+"
  .. "URL%3Ahttps%3A%2F%2Fcontoso.b2clogin.com%2Fstatic%2Funified.html%22%2C%22acST%22%3A"
  .. "1716198067%2C%22acD%22%3A112%7D%2C%7B%22ac%22%3A%22T019%22%2C%22acST%22%3A1716198068"
  .. "%2C%22acD%22%3A9%7D%5D%7D"
  -- Padding to 1,000 bytes: the device fingerprint the page computes.
  .. "&deviceFingerprint=nGhJbRXpMTPbXiyKgGGoXb1SSmSLMq5ADnsossu83dXRWE-6wrJG5Iqw6gmPCGo8DIoezJRlg6Zo7tHeyNeXn"
  .. "-WvViIJFlfPGv3Sr0G5iwAE3AQ3oPWHXZZe9SqAR9sT6GCMkNih4Se6RN4GK70KmnuF19_eVSuGVvN946dsVjO2pkBw72w3skQk36"
  .. "SgLcpdmu70Wi6M-S5eeB0hrFX1ZC4XdE7echMxXN-y7px"
assert(#wrk.body == 1000, "login body must be 1000 bytes, is " .. #wrk.body)

local h = wrk.headers
h["Host"] = "login.contoso.com"
h["Connection"] = "keep-alive"
h["sec-ch-ua"] = [["Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"]]
h["X-CSRF-TOKEN"] = "wQpJQpuAJQNc1Co_vJ7Wn-5t73F23Edbsx-FNNFf419UIrRJV5WcSn8cMppIv3lUPNm11Lfd-HWHRebJKN-L=="
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
h["Cookie"] = "x-ms-cpim-sso:contoso.onmicrosoft.com_0=m1.Me6SXWTLwHSDk4e7gdcpbl3DJxgRqRKvEnDsO97Gk8mZOEJ3; "
  .. "x-ms-cpim-csrf=X8qbdyh8uI942iRw3yhdBiGVyyjMoQd0ppNqr4S07jHbIWJtTZdfEZgfe9dRUD9z; "
  .. "x-ms-cpim-trans=eyJUX0RJQyI6W3siSSI6IjAG14ttQ37OcB6WKoM-0FXq3tzR1rWWNg2myk1QPDJDs3wjX86-LshVI55FaSI; "
  .. "x-ms-cpim-cache|otwu8mpxxvadwajasfvspp_0=m1.1G76EBmGbzYAQRXCGVgUQJ5_Z1yX--PrG18JM_x_j4IIL-CcUv3NUg4OcNIGB4CV5yBGl9dt; "
  .. "x-ms-cpim-dc=cpim-weu; ai_user=Wd3kP|2024-05-20T09:41:07.118Z"
