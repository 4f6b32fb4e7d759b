//! The local AWS servers the other tests rely on, checked over the wire: the
//! stand-in (Glacier tree hashes, DynamoDB conditional writes, S3 checksums) and
//! moto (S3 storage classes, restores that take time). Each check fails if the
//! server accepts what AWS would refuse, so a server that stopped checking would
//! not silently weaken the tests built on it.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, TableStatus};
use common::aws::{FakeCloud, Moto, create_plain_table, sdk_config};
use common::pattern;
use sha2::{Digest, Sha256};

/// Glacier's SHA-256 tree hash: a hash per MiB, then pairs hashed up to one.
fn tree_hash(data: &[u8]) -> String {
    let mut level: Vec<[u8; 32]> = data
        .chunks(1 << 20)
        .map(|c| Sha256::digest(c).into())
        .collect();
    if level.is_empty() {
        level.push(Sha256::digest(b"").into());
    }
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [a, b] => Sha256::new()
                    .chain_update(a)
                    .chain_update(b)
                    .finalize()
                    .into(),
                [a] => *a,
                _ => unreachable!(),
            })
            .collect();
    }
    hex::encode(level[0])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standin_checks_glacier_tree_hashes() {
    let cloud = FakeCloud::start();
    let glacier = aws_sdk_glacier::Client::new(&sdk_config(&cloud.endpoint).await);
    glacier
        .create_vault()
        .account_id("-")
        .vault_name("v")
        .send()
        .await
        .expect("create vault");
    let data = pattern(2 * (1 << 20) + 12345, 1);
    let good = tree_hash(&data);

    let mut wrong = data.clone();
    wrong[1 << 20] ^= 1;
    let refused = glacier
        .upload_archive()
        .account_id("-")
        .vault_name("v")
        .checksum(tree_hash(&wrong))
        .body(data.clone().into())
        .send()
        .await;
    let err = refused.expect_err("an archive whose tree hash does not match must be refused");
    assert!(
        format!("{err:?}").contains("InvalidParameterValue"),
        "unexpected error: {err:?}"
    );

    let archive = glacier
        .upload_archive()
        .account_id("-")
        .vault_name("v")
        .checksum(&good)
        .body(data.into())
        .send()
        .await
        .expect("upload with the right tree hash");
    assert_eq!(archive.checksum(), Some(good.as_str()));
    assert!(archive.archive_id().is_some_and(|id| !id.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standin_refuses_a_dynamodb_write_whose_condition_fails() {
    let cloud = FakeCloud::start();
    let db = aws_sdk_dynamodb::Client::new(&sdk_config(&cloud.endpoint).await);
    create_plain_table(&db, "standin", "k").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let table = db
            .describe_table()
            .table_name("standin")
            .send()
            .await
            .unwrap();
        if table.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            break;
        }
        assert!(Instant::now() < deadline, "table never became active");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let put = |v: &'static str| {
        db.put_item()
            .table_name("standin")
            .item("k", AttributeValue::S("key".into()))
            .item("v", AttributeValue::S(v.into()))
            .condition_expression("attribute_not_exists(k)")
            .send()
    };
    put("first").await.expect("first write");
    let err = put("second")
        .await
        .expect_err("a second write with attribute_not_exists must be refused");
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_conditional_check_failed_exception()),
        "unexpected error: {err:?}"
    );
    let item = db
        .get_item()
        .table_name("standin")
        .key("k", AttributeValue::S("key".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert_eq!(
        item.item().and_then(|i| i.get("v")),
        Some(&AttributeValue::S("first".into()))
    );
}

/// An S3 answer: status, headers (names lower-cased) and body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One S3 request over plain HTTP/1.1. Neither server checks signatures (both
/// take any credentials), but both route on the service named in the
/// Authorization header's scope, so the request carries one that names S3.
fn s3(endpoint: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let addr = endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\
         Content-Type: application/octet-stream\r\nx-amz-date: 20260101T000000Z\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=firntest/20260101/us-east-1/s3/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature=0000\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read answer");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size");
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            .expect("hex chunk size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
}

fn sha256_base64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(data))
}

#[test]
fn the_standin_refuses_an_s3_object_whose_checksum_does_not_match() {
    let cloud = FakeCloud::start();
    let e = &cloud.endpoint;
    assert_eq!(s3(e, "PUT", "/bucket1", &[], b"").status, 200);
    let data = pattern(100_000, 2);

    let bad = s3(
        e,
        "PUT",
        "/bucket1/bad",
        &[("x-amz-checksum-sha256", &sha256_base64(b"something else"))],
        &data,
    );
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(bad.text().contains("BadDigest"), "{}", bad.text());
    assert_eq!(s3(e, "GET", "/bucket1/bad", &[], b"").status, 404);

    let sum = sha256_base64(&data);
    let good = s3(
        e,
        "PUT",
        "/bucket1/good",
        &[("x-amz-checksum-sha256", &sum)],
        &data,
    );
    assert_eq!(good.status, 200, "{}", good.text());
    let got = s3(e, "GET", "/bucket1/good", &[], b"");
    assert_eq!(got.status, 200);
    assert!(got.body == data, "GET returned other bytes than were PUT");
}

#[test]
fn moto_refuses_a_deep_archive_object_until_its_restore_has_taken_its_time() {
    let moto = Moto::start();
    moto.restores_take(2);
    let e = &moto.endpoint;
    assert_eq!(s3(e, "PUT", "/bucket1", &[], b"").status, 200);
    let data = pattern(10_000, 3);
    let put = s3(
        e,
        "PUT",
        "/bucket1/cold",
        &[("x-amz-storage-class", "DEEP_ARCHIVE")],
        &data,
    );
    assert_eq!(put.status, 200, "{}", put.text());

    let refused = s3(e, "GET", "/bucket1/cold", &[], b"");
    assert_eq!(
        refused.status, 403,
        "an unrestored DEEP_ARCHIVE object was served"
    );
    assert!(
        refused.text().contains("InvalidObjectState"),
        "{}",
        refused.text()
    );

    let restore = s3(
        e,
        "POST",
        "/bucket1/cold?restore",
        &[],
        b"<RestoreRequest><Days>1</Days>\
          <GlacierJobParameters><Tier>Standard</Tier></GlacierJobParameters></RestoreRequest>",
    );
    assert_eq!(restore.status, 202, "{}", restore.text());
    let started = Instant::now();

    let head = s3(e, "HEAD", "/bucket1/cold", &[], b"");
    assert_eq!(
        head.header("x-amz-restore"),
        Some("ongoing-request=\"true\"")
    );
    assert_eq!(head.header("x-amz-storage-class"), Some("DEEP_ARCHIVE"));
    assert_eq!(s3(e, "GET", "/bucket1/cold", &[], b"").status, 403);

    loop {
        let head = s3(e, "HEAD", "/bucket1/cold", &[], b"");
        let restore = head.header("x-amz-restore").unwrap_or_default().to_string();
        if restore.contains("ongoing-request=\"false\"") {
            assert!(restore.contains("expiry-date="), "{restore}");
            break;
        }
        assert_eq!(restore, "ongoing-request=\"true\"");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the restore never finished"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1500),
        "a restore set to take 2 s was done after {took:?}"
    );
    let got = s3(e, "GET", "/bucket1/cold", &[], b"");
    assert_eq!(got.status, 200, "{}", got.text());
    assert!(got.body == data, "GET returned other bytes than were PUT");
}
