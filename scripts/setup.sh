#!/usr/bin/env bash
# Installs the system packages the build needs, when they are missing (Debian).
# Sourced by scripts/run.sh and scripts/test.sh.
need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v cc >/dev/null 2>&1 || need+=(build-essential)
# Pingora's openssl backend builds a vendored OpenSSL: that takes perl and make.
command -v perl >/dev/null 2>&1 || need+=(perl)
command -v make >/dev/null 2>&1 || need+=(make)
# The HTTP/2 tests drive the proxy with curl (built with nghttp2 on Debian).
command -v curl >/dev/null 2>&1 || need+=(curl)
# The OWASP Core Rule Set 3.3.4 the SecLang tests load (/usr/share/modsecurity-crs).
[ -f /usr/share/modsecurity-crs/owasp-crs.load ] || need+=(modsecurity-crs)
# For the tests only (scripts/test.sh sets WAF_SETUP_PEER=1): the peer the benchmarks
# measure in process, ModSecurity 3 (libmodsecurity3) with its recommended configuration,
# which Debian ships in the nginx connector's package.
if [ "${WAF_SETUP_PEER:-}" = 1 ] && ! { [ -f /usr/share/nginx/docs/modsecurity/modsecurity.conf ] &&
  /sbin/ldconfig -p 2>/dev/null | grep -q 'libmodsecurity\.so\.3'; }; then
  need+=(libnginx-mod-http-modsecurity)
fi
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
fi
