# Sourced by scripts/test and scripts/bench: installs the npm tools pinned in package.json (Azurite) into
# node_modules when package.json or its lock changed since the last install, and puts them on PATH.
install_npm_tools() {
  [ -f package.json ] || return 0
  local stamp=node_modules/.package-lock.sha want
  want=$(cat package.json package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    printf '\n== installing npm tools (package.json)\n'
    if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi
    echo "$want" > "$stamp"
  fi
  export PATH="$PWD/node_modules/.bin:$PATH"
}
