# Entry point: greets every argument.
main() {
  [ $# -gt 0 ] || set -- world
  for who in "$@"; do format "$who"; done
}
