// The package's declarations as a TypeScript user of the Express middleware
// sees them: test/types/express.ts must type-check, its req.authd typed as
// the token's claims (and refusing what the claims are not).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { it } from "node:test";

const tsc = fileURLToPath(new URL("../node_modules/typescript/bin/tsc", import.meta.url));
const project = fileURLToPath(new URL("types/tsconfig.json", import.meta.url));

it("types req.authd as the token's claims in Express handlers behind requireToken", async () => {
  const outcome = await promisify(execFile)(process.execPath, [tsc, "-p", project], { timeout: 60_000 }).then(
    () => "",
    (error) => `${error.stdout}${error.stderr}`,
  );
  assert.equal(outcome, "", `tsc refused test/types/express.ts:\n${outcome}`);
});
