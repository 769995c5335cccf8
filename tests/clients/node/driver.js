// Drives cos-nodejs-sdk-v5 for tests/clients/test_nodejs_sdk.py:
//   node driver.js upload FILE KEY [CHUNK_BYTES] | download KEY FILE | tag KEY k=v&k2=v2 | tags KEY
// Options as docs/local-cloud.md's recipe (Protocol + Proxy); ADDRESSING=path instead addresses
// http://127.0.0.1:PORT/<bucket>/<key> through `Domain`, ADDRESSING=ip sends to `Ip` with COS's
// Host header. Prints the SDK's answer as JSON.
const fs = require('fs');
const COS = require('cos-nodejs-sdk-v5');

const options = {
  SecretId: process.env.SECRET_ID,
  SecretKey: process.env.SECRET_KEY,
  Protocol: 'http:',
};
const endpointHost = process.env.COS_ENDPOINT.replace(/^http:\/\//, '');
if (process.env.ADDRESSING === 'path') {
  options.Domain = endpointHost + '/{Bucket}';
} else if (process.env.ADDRESSING === 'ip') {
  options.Ip = endpointHost;
} else {
  options.Proxy = process.env.COS_ENDPOINT;
}
const cos = new COS(options);
const where = { Bucket: 'intake-1250000000', Region: 'ap-guangzhou' };
const [op, a, b, c] = process.argv.slice(2);

function done(err, data) {
  if (err) {
    console.error(JSON.stringify(err));
    process.exit(1);
  }
  console.log(JSON.stringify(data));
}

if (op === 'upload') {
  const chunk = c ? Number(c) : undefined;
  cos.uploadFile({ ...where, Key: b, FilePath: a, SliceSize: 1024 * 1024, ChunkSize: chunk }, done);
} else if (op === 'download') {
  cos.getObject({ ...where, Key: a, Output: fs.createWriteStream(b) }, done);
} else if (op === 'tag') {
  const Tags = b.split('&').map((pair) => {
    const [Key, Value] = pair.split('=');
    return { Key, Value };
  });
  cos.putObjectTagging({ ...where, Key: a, Tags }, done);
} else if (op === 'tags') {
  cos.getObjectTagging({ ...where, Key: a }, done);
} else {
  done(new Error('unknown operation ' + op));
}
