// What a user of the Express middleware writes: the claims are typed at
// req.authd and res.locals.authd. Type-checked, never run, by
// test/types.test.mjs.
import express from "express";
import { createVerifier, requireToken, type Claims } from "@authd/client/node";

export async function serve(): Promise<void> {
  const verifier = await createVerifier({ url: "http://127.0.0.1:50051", feedToken: "feed" });
  const app = express();
  app.get("/me", requireToken(verifier), (req, res) => {
    const sub: string = req.authd.sub;
    const sid: string | undefined = res.locals.authd.sid;
    const claims: Claims = req.authd;
    // @ts-expect-error: the claims are authd's, not an object of any shape.
    const other: unknown = req.authd.notAClaim;
    // @ts-expect-error: sub is a string.
    const wrong: number = req.authd.sub;
    res.json({ sub, sid, user: claims.username, other, wrong });
  });
  app.listen(0);
}
