# Formats a greeting.
format() {
  printf '%s, %s!\n' "${GREETING:-hello}" "$1"
}
