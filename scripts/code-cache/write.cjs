// Writes the V8 code cache of the installed controller (scripts/install.sh runs it as the user who
// installs): node write.cjs CONTROLLER DECLARATION. It runs the controller once, `status` of an
// empty DECLARATION (which writes nothing), so that the functions a command runs are compiled, then
// writes CONTROLLER.v8-cache atomically (a temporary file, then rename), 0644: a header line (node
// version, arch, the controller's size and modification time: what scripts/code-cache/loader.js
// checks), then V8 data.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const Module = require('node:module');

const [controller, declaration] = process.argv.slice(2).map((file) => path.resolve(file));
const source = fs.readFileSync(controller, 'utf8');
const script = new vm.Script(Module.wrap(source.replace(/^#!.*/, '')), {
  filename: controller,
  importModuleDynamically: (specifier) => import(specifier),
});
process.on('exit', () => {
  const cacheFile = `${controller}.v8-cache`;
  const temporary = `${cacheFile}.${process.pid}.tmp`;
  const own = fs.statSync(controller);
  const header = `${[process.version, process.arch, own.size, Math.trunc(own.mtimeMs)].join(' ')}\n`;
  fs.writeFileSync(temporary, Buffer.concat([Buffer.from(header, 'latin1'), script.createCachedData()]), { mode: 0o644, flag: 'wx' });
  fs.renameSync(temporary, cacheFile);
  process.exitCode = 0; // status of no instance exits 3: that is expected here
});
process.argv.splice(1, process.argv.length - 1, controller, '--conf', declaration, 'status');
const module_ = new Module(controller, null);
module_.filename = controller;
script.runInThisContext().call(module_.exports, module_.exports, Module.createRequire(controller), module_, controller, path.dirname(controller));
