//! An MSRP connection's decoder does not keep the room of its largest message: after a large
//! frame is handed out and dropped, the next small frame is read into a small buffer.

use bytes::Bytes;
use im_runtime::proto::msrp::*;

fn send(tid: &str, body: Vec<u8>) -> Vec<u8> {
    let mut f = Frame::request(
        TransactionId::new(tid).unwrap(),
        Method::Send,
        vec!["msrp://h:7394/s;tcp".parse().unwrap()],
        vec!["msrp://g:7394/t;tcp".parse().unwrap()],
    );
    f.message_id = Some(MessageId::new("m1").unwrap());
    f.byte_range = Some(ByteRange {
        start: 1,
        end: Some(body.len() as u64),
        total: Some(body.len() as u64),
    });
    f.body = Some(Body {
        content_type: "text/plain".into(),
        data: Bytes::from(body),
    });
    encode_to_vec(&f).unwrap()
}

#[test]
fn a_large_frame_does_not_leave_its_room_behind() {
    let mut d = Decoder::default();
    let large = send("t1", vec![b'x'; 256 * 1024]);
    d.handle_bytes(&large);
    let f = d.poll_frame().expect("a frame").expect("well formed");
    assert_eq!(f.body.as_ref().map(|b| b.data.len()), Some(256 * 1024));
    drop(f);
    assert!(d.poll_frame().is_none());
    let small = send("t2", b"hi".to_vec());
    d.handle_bytes(&small);
    assert!(
        d.capacity() < 16 * 1024,
        "{} bytes of room kept after a large frame",
        d.capacity()
    );
    let f = d.poll_frame().expect("a frame").expect("well formed");
    assert_eq!(f.body.map(|b| b.data), Some(Bytes::from_static(b"hi")));
}
