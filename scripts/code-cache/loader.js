// php-fpm-multi: runs the one-file controller with V8 code cache (docs/BENCHMARKS.md, "Code cache").
// scripts/install.sh puts this text into the installed command as node -e TEXT CONTROLLER ARGS.
// It uses CONTROLLER.v8-cache only when it can be trusted: a regular file owned by root or by the
// owner of the controller, writable by nobody else, in a directory writable by nobody else, written
// by the same node for exactly this controller (its header names the node version, the arch, and
// the size and modification time of the controller: hashing its 500 KB on every run, with
// node:crypto loaded for it, would cost more than the cache saves; V8 checks the source length
// again). Otherwise, or on any error, it runs the controller as node would.
// PHP_FPM_MULTI_CODE_CACHE_REPORT=1 says on stderr which it did (for the tests). No apostrophes here:
// the installed command quotes this text with them.
(() => {
  const fs = require("node:fs");
  const path = require("node:path");
  const controller = process.argv[1];
  const cacheFile = controller + ".v8-cache";
  const MAX_CACHE_BYTES = 16 * 1024 * 1024;
  const report = (what) => {
    if (process.env.PHP_FPM_MULTI_CODE_CACHE_REPORT === "1") process.stderr.write("php-fpm-multi: code cache " + what + "\n");
  };
  const trusted = (stat, owner) => (stat.uid === 0 || stat.uid === owner) && (stat.mode & 0o022) === 0;
  let loaded = null;
  let own = null;
  try {
    own = fs.statSync(controller);
    const fd = fs.openSync(cacheFile, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    try {
      const stat = fs.fstatSync(fd);
      if (!stat.isFile() || stat.size > MAX_CACHE_BYTES) throw new Error("not a regular file of at most 16 MiB");
      if (!trusted(stat, own.uid) || !trusted(fs.statSync(path.dirname(cacheFile)), own.uid)) throw new Error("writable by others, or owned by another user");
      const data = Buffer.alloc(stat.size);
      let at = 0;
      while (at < stat.size) {
        const read = fs.readSync(fd, data, at, stat.size - at, at);
        if (read === 0) break;
        at += read;
      }
      loaded = data.subarray(0, at);
    } finally {
      fs.closeSync(fd);
    }
  } catch (error) {
    report("not used: " + (error.code === "ENOENT" ? "none" : error.message));
  }
  const source = fs.readFileSync(controller, "utf8");
  if (loaded !== null) {
    const newline = loaded.indexOf(10);
    const header = newline < 0 ? "" : loaded.subarray(0, newline).toString("latin1");
    const expected = [process.version, process.arch, own.size, Math.trunc(own.mtimeMs)].join(" ");
    if (header === expected) {
      const vm = require("node:vm");
      const Module = require("node:module");
      const script = new vm.Script(Module.wrap(source.replace(/^#!.*/, "")), {
        filename: controller,
        cachedData: loaded.subarray(newline + 1),
        importModuleDynamically: (specifier) => import(specifier),
      });
      if (!script.cachedDataRejected) {
        report("used");
        const module = new Module(controller, null);
        module.filename = controller;
        module.paths = Module._nodeModulePaths(path.dirname(controller));
        script.runInThisContext().call(module.exports, module.exports, Module.createRequire(controller), module, controller, path.dirname(controller));
        return;
      }
      report("not used: rejected by V8");
    } else {
      report("not used: made for another node or controller");
    }
  }
  require(controller);
})();
