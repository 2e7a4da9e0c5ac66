// validate.js: validates an OpenAPI document with @apidevtools/swagger-parser (schema
// of its version, $refs resolved); prints "ok" or the errors. Run by openapi.test.
//   node validate.js NODE_MODULES_DIR FILE
const path = require("path");
const SwaggerParser = require(path.join(process.argv[2], "@apidevtools", "swagger-parser"));
SwaggerParser.validate(process.argv[3])
    .then((api) => {
        console.log("ok " + api.openapi + " " + Object.keys(api.paths).length + " paths");
    })
    .catch((err) => {
        console.log(String(err && err.message ? err.message : err));
        process.exit(1);
    });
